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

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number, usage: number = STORAGE_USAGE, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    let buffer = list?.pop();
    if (buffer) {
      this.pooledBytes -= size;
      this.pooledCount -= 1;
    } else {
      buffer = this.device.createBuffer({ size, usage, label });
      this.created += 1;
    }
    this.live.add(buffer);
    this.liveBytes += size;
    return buffer;
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
    for (const list of this.free.values()) for (const buffer of list) buffer.destroy();
    this.free.clear();
    this.pooledBytes = this.pendingRelease.reduce((sum, b) => sum + b.size, 0);
    this.pooledCount = this.pendingRelease.length;
  }
}
