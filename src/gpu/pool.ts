// Size-class buffer pool. Training shapes repeat every step, so after warm-up every request is
// served from a free list and no GPU buffer is created. A released buffer becomes reusable only
// after the submit that follows its release: commands recorded before that submit may still read it,
// and queue.writeBuffer into a reused buffer would otherwise overtake them.

// GPUBufferUsage values from the WebGPU spec, spelled out so this module needs no global at load time.
export const BUFFER_USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const STORAGE_USAGE = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;

/** Rounds a byte size up to its class: 256-byte steps up to 4 KiB, then 8 classes per octave (<= 12.5% waste). */
export function sizeClass(bytes: number): number {
  const minimum = Math.max(bytes, 4);
  if (minimum <= 4096) return Math.ceil(minimum / 256) * 256;
  const octave = 2 ** Math.floor(Math.log2(minimum));
  const step = octave / 8;
  return Math.ceil(minimum / step) * step;
}

/** Requests per size class remembered between marks (bounds the history when nothing marks). */
const MAX_HISTORY = 4096;

/** Removes `wanted` from a free list if it is there. */
function takeFrom(list: GPUBuffer[], wanted: GPUBuffer | undefined): GPUBuffer | undefined {
  if (!wanted) return undefined;
  // Recently released buffers sit at the end: search from there.
  const i = list.lastIndexOf(wanted);
  if (i < 0) return undefined;
  return i === list.length - 1 ? list.pop() : list.splice(i, 1)[0];
}

export interface PoolStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers idle in the free lists (or waiting for the next submit). */
  pooledBuffers: number;
  pooledBytes: number;
  /** Buffers ever created by this pool. */
  createdBuffers: number;
}

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  private pendingRelease: GPUBuffer[] = [];
  private readonly live = new Set<GPUBuffer>();
  private created = 0;
  private pooledBytes = 0;
  private pooledCount = 0;
  private liveBytes = 0;
  /** Told about each buffer just before the pool destroys it (the context drops its bind groups). */
  onDestroy: ((buffer: GPUBuffer) => void) | null = null;
  /**
   * Per size class, the buffer handed out at each request in the last round (between two mark()s)
   * and in the round before, and how many requests this round has made. A step repeats its requests
   * in the same order, so handing out the same buffer again where it is free makes every step bind
   * the same buffers and reuse its bind groups; plain LIFO order drifts from step to step. The round
   * before serves tensors kept from one step into the next (a loss read a step later): last round's
   * buffer is still held then, and alternating between two settles where LIFO would not.
   */
  private readonly history = new Map<string, { last: GPUBuffer[]; before: GPUBuffer[] }>();
  private readonly position = new Map<string, number>();
  /** How many times each buffer has been handed out: a changed count means a new owner. */
  private readonly handouts = new WeakMap<GPUBuffer, number>();
  /** Idle buffers held back from every request (a replayed step's scratch: see reserve). */
  private readonly reserved = new Set<GPUBuffer>();

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number, usage: number = STORAGE_USAGE, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    const n = this.position.get(key) ?? 0;
    this.position.set(key, n + 1);
    let history = this.history.get(key);
    if (!history) this.history.set(key, (history = { last: [], before: [] }));
    let buffer = list && (takeFrom(list, history.last[n]) ?? takeFrom(list, history.before[n]));
    buffer ??= list?.pop();
    if (buffer) {
      this.pooledBytes -= size;
      this.pooledCount -= 1;
    } else {
      buffer = this.device.createBuffer({ size, usage, label });
      this.created += 1;
    }
    this.live.add(buffer);
    this.handouts.set(buffer, (this.handouts.get(buffer) ?? 0) + 1);
    this.liveBytes += size;
    if (n < MAX_HISTORY) {
      history.before[n] = history.last[n];
      history.last[n] = buffer;
    }
    return buffer;
  }

  /** Starts a new round of requests (the context calls it at each step boundary: throttle, sync). */
  mark(): void {
    this.position.clear();
  }

  /** Returns a buffer; it is reused only after the next submit (see afterSubmit). */
  release(buffer: GPUBuffer): void {
    if (!this.live.delete(buffer)) throw new Error('BufferPool.release: buffer is not live (released twice?)');
    this.liveBytes -= buffer.size;
    this.pendingRelease.push(buffer);
    this.pooledBytes += buffer.size;
    this.pooledCount += 1;
  }

  /**
   * Which hand-out of `buffer` is live now: 0 when it is idle, otherwise a count that changes each time
   * the pool hands the buffer out again (to a new owner).
   */
  ownership(buffer: GPUBuffer): number {
    return this.live.has(buffer) ? (this.handouts.get(buffer) ?? 0) : 0;
  }

  /**
   * Holds idle buffers back from every request until unreserve(): a recorded step replayed later uses
   * them as its scratch space, so nothing else may be given them meanwhile. Returns false (and holds
   * nothing) when one of them is live or unknown to the pool. They still count as pooled memory.
   */
  reserve(buffers: Iterable<GPUBuffer>): boolean {
    const wanted = [...new Set(buffers)];
    const idle = (b: GPUBuffer): boolean => !this.live.has(b) && !this.reserved.has(b) && (this.pendingRelease.includes(b) || (this.free.get(`${b.usage}:${b.size}`)?.includes(b) ?? false));
    if (!wanted.every(idle)) return false;
    for (const b of wanted) {
      const pending = this.pendingRelease.indexOf(b);
      if (pending >= 0) this.pendingRelease.splice(pending, 1);
      else takeFrom(this.free.get(`${b.usage}:${b.size}`)!, b);
      this.reserved.add(b);
    }
    return true;
  }

  /**
   * Gives reserved buffers back to the pool: reusable after the next submit, like a release, or at
   * once with `submitted` (the caller has just submitted every command recorded so far).
   */
  unreserve(buffers: Iterable<GPUBuffer>, submitted = false): void {
    for (const b of new Set(buffers)) {
      if (!this.reserved.delete(b)) continue;
      if (submitted) this.makeFree(b);
      else this.pendingRelease.push(b);
    }
  }

  /** Puts an idle buffer on its size class's free list. */
  private makeFree(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buffer);
  }

  /** Called by the context after each queue.submit. */
  afterSubmit(): void {
    for (const buffer of this.pendingRelease) this.makeFree(buffer);
    this.pendingRelease = [];
  }

  stats(): PoolStats {
    return {
      liveBuffers: this.live.size,
      liveBytes: this.liveBytes,
      pooledBuffers: this.pooledCount,
      pooledBytes: this.pooledBytes,
      createdBuffers: this.created,
    };
  }

  /** Destroys idle buffers (after a model is dropped, say). Live ones are untouched. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.onDestroy?.(buffer);
        buffer.destroy();
      }
    }
    this.free.clear();
    this.history.clear(); // it may name destroyed buffers
    const kept = [...this.pendingRelease, ...this.reserved];
    this.pooledBytes = kept.reduce((sum, b) => sum + b.size, 0);
    this.pooledCount = kept.length;
  }
}
