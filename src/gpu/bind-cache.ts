// Bind groups reused across dispatches. A training step binds the same buffers in the same order
// every step (the pool hands back the same buffers for the same requests), and creating a bind group
// is most of a dispatch's host cost on Dawn, so a bind group is created once per (layout, exact
// buffers) and looked up after that.
//
// Keys are buffer identities, never sizes or labels: a buffer that went back to the pool and came out
// again is the same GPUBuffer, and a bind group over it reads whatever it holds now, which is what a
// fresh bind group would read. A destroyed buffer can never be bound again, so every entry that
// names it is dropped (forget) when the pool destroys it; otherwise the cache would keep the
// destroyed buffers' bind groups alive without bound.

interface Entry {
  group: GPUBindGroup;
  buffers: readonly GPUBuffer[];
}

export interface BindCacheStats {
  /** Bind groups created (cache misses). */
  bindGroupsCreated: number;
  /** Dispatches served by an existing bind group. */
  bindGroupHits: number;
  /** Bind groups held now. */
  bindGroupsCached: number;
}

export class BindGroupCache {
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  private readonly entries = new Map<string, Entry>();
  /** The keys of the entries that bind each buffer, so destroying a buffer drops exactly those. */
  private readonly byBuffer = new Map<GPUBuffer, Set<string>>();
  private created = 0;
  private hits = 0;

  constructor(
    private readonly device: GPUDevice,
    /** Entries kept at most; past it the oldest are dropped (a step's working set is far smaller). */
    private readonly capacity = 8192,
  ) {}

  private id(buffer: GPUBuffer): number {
    let id = this.ids.get(buffer);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(buffer, id);
    }
    return id;
  }

  /**
   * The bind group of `layout` with the uniform at @binding(0) (`uniformSize` bytes, dynamic offset)
   * and `buffers` at @binding(1..n): a buffer whole, or a slice's byte range. `layoutKey` names the layout uniquely within the device.
   */
  get(layoutKey: string, layout: GPUBindGroupLayout, uniform: GPUBuffer, uniformSize: number, buffers: readonly (GPUBuffer | GPUBufferBinding)[]): GPUBindGroup {
    let key = `${layoutKey}|${this.id(uniform)}`;
    // A slice's key names its byte range too: two slots of one arena are two bindings.
    for (const b of buffers) key += 'buffer' in b ? `,${this.id(b.buffer)}@${b.offset ?? 0}+${b.size ?? ''}` : `,${this.id(b)}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.hits += 1;
      return hit.group;
    }
    const group = this.device.createBindGroup({
      layout,
      entries: [
        { binding: 0, resource: { buffer: uniform, offset: 0, size: uniformSize } },
        ...buffers.map((b, i) => ({ binding: i + 1, resource: 'buffer' in b ? b : { buffer: b } })),
      ],
    });
    this.created += 1;
    const bound = [uniform, ...buffers.map((b) => ('buffer' in b ? b.buffer : b))];
    this.entries.set(key, { group, buffers: bound });
    for (const buffer of bound) {
      let keys = this.byBuffer.get(buffer);
      if (!keys) this.byBuffer.set(buffer, (keys = new Set()));
      keys.add(key);
    }
    if (this.entries.size > this.capacity) this.drop(this.entries.keys().next().value as string);
    return group;
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    for (const buffer of entry.buffers) {
      const keys = this.byBuffer.get(buffer);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) this.byBuffer.delete(buffer);
    }
  }

  /** Drops every bind group that binds `buffer` (call before destroying it). */
  forget(buffer: GPUBuffer): void {
    const keys = this.byBuffer.get(buffer);
    if (!keys) return;
    for (const key of [...keys]) this.drop(key);
    this.byBuffer.delete(buffer);
  }

  /** Bind groups held now that bind `buffer`. */
  boundTo(buffer: GPUBuffer): number {
    return this.byBuffer.get(buffer)?.size ?? 0;
  }

  clear(): void {
    this.entries.clear();
    this.byBuffer.clear();
  }

  stats(): BindCacheStats {
    return { bindGroupsCreated: this.created, bindGroupHits: this.hits, bindGroupsCached: this.entries.size };
  }
}
