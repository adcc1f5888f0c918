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

  /** Called by the context after each queue.submit. */
  afterSubmit(): void {
    for (const buffer of this.pendingRelease) {
      const key = `${buffer.usage}:${buffer.size}`;
      let list = this.free.get(key);
      if (!list) this.free.set(key, (list = []));
      list.push(buffer);
    }
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
    this.pooledBytes = this.pendingRelease.reduce((sum, b) => sum + b.size, 0);
    this.pooledCount = this.pendingRelease.length;
  }
}
