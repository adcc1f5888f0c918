// The GPU context: one device, its pipeline cache, its buffer pool, and the batching of dispatches.
// Every kernel launch in the engine goes through GpuContext.dispatch. Dispatches are recorded into
// one open compute pass and submitted in batches; readback is asynchronous and is the only place we
// wait for the GPU.
import type { AcquiredDevice, AdapterSummary } from './device';
import { BindGroupCache, type BindCacheStats } from './bind-cache';
import { BUFFER_USAGE, BufferPool, type PoolStats } from './pool';

/** A compute kernel variant. Storage buffers sit at @binding(1..n) of @group(0); @binding(0) is the params uniform. */
export interface KernelSpec {
  /** Shader family and entry, for messages and the cache key (e.g. "conv_forward.wgsl:conv_forward"). */
  name: string;
  /** WGSL source of the module. */
  code: string;
  entry: string;
  /** WGSL `override` constants; part of the cache key. */
  constants?: Record<string, number>;
  /** Access of each storage binding, in binding order starting at 1. */
  bindings: readonly ('read' | 'rw')[];
}

/** Uniform params are at most 64 u32 (256 bytes, the usual uniform offset alignment). */
export const MAX_PARAM_WORDS = 64;
const PARAM_STRIDE_BYTES = 256;
/**
 * Dispatches per submit: enough that a training step (351 for Table-1's, 635 for the hierarchical
 * small preset's) goes in one. Submitting mid-step let a CPU adapter start on the first kernels while
 * the rest were still being recorded, on the same cores, and more than doubled the host time (see
 * docs/performance.md); loops keep the next step queued (throttle), so the GPU does not wait for it.
 */
const DISPATCHES_PER_SUBMIT = 1024;
/** WebGPU's guaranteed per-dimension dispatch limit. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/** One dispatch with its pipeline and bind group resolved (GpuContext.captureDispatches). */
export interface ResolvedDispatch {
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly params: Uint32Array;
  readonly workgroups: readonly [number, number, number];
}

/**
 * One recorded GPU command, resolved so it can be issued again without the engine (captureCommands,
 * replayCommands). `buffers` are the storage buffers a dispatch binds; a write keeps its bytes.
 */
export type RecordedCommand =
  | ({ readonly kind: 'dispatch'; readonly buffers: readonly GPUBuffer[] } & ResolvedDispatch)
  | { readonly kind: 'copy'; readonly src: GPUBuffer; readonly srcOffset: number; readonly dst: GPUBuffer; readonly dstOffset: number; readonly bytes: number }
  | { readonly kind: 'clear'; readonly buffer: GPUBuffer; readonly offset: number; readonly bytes: number }
  | { readonly kind: 'write'; readonly buffer: GPUBuffer; readonly offset: number; readonly data: Uint8Array };

export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

export class DeviceLostError extends GpuError {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceLostError';
  }
}

export interface ContextStats extends PoolStats, BindCacheStats {
  pipelines: number;
  dispatches: number;
  /** Buffer-to-buffer copies recorded (readbacks included). */
  copies: number;
  submits: number;
}

export class GpuContext {
  readonly device: GPUDevice;
  readonly adapter: AdapterSummary;
  readonly pool: BufferPool;
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly pending = new Map<string, Promise<GPUComputePipeline>>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly pipelineLayouts = new Map<string, GPUPipelineLayout>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /**
   * One uniform buffer for every batch's params, bound at a dynamic offset per dispatch, so a bind
   * group depends only on the storage buffers and can be reused. Rewriting it for the next batch is
   * safe: queue.writeBuffer is ordered after the submits before it.
   */
  private paramsBuffer: GPUBuffer | null = null;
  private readonly bindGroups: BindGroupCache;
  private readonly dynamicOffset = new Uint32Array(1);
  private readonly paramsData = new Uint32Array((DISPATCHES_PER_SUBMIT * PARAM_STRIDE_BYTES) / 4);
  private dispatchesInBatch = 0;
  private dispatchCount = 0;
  private copyCount = 0;
  private submitCount = 0;
  private readonly errors: string[] = [];
  private lostMessage: string | null = null;
  private readonly stagingFree: GPUBuffer[] = [];
  /** Called for every executed dispatch when set (the benchmark's per-kernel profile uses it). */
  onDispatch: ((spec: KernelSpec, buffers: readonly (GPUBuffer | GPUBufferBinding)[], params: Uint32Array, workgroups: readonly number[]) => void) | null = null;
  /** While set, dispatch() only collects kernel variants (see prewarm). */
  private captured: Map<string, KernelSpec> | null = null;
  /** While set, executed commands are also kept here, resolved (see captureCommands). */
  private recording: RecordedCommand[] | null = null;
  /** Set when a readback happens while recording: such work cannot be replayed. */
  private recordingRead = false;

  constructor(acquired: AcquiredDevice) {
    this.device = acquired.device;
    this.adapter = acquired.summary;
    this.pool = new BufferPool(this.device);
    this.bindGroups = new BindGroupCache(this.device);
    this.pool.onDestroy = (buffer) => this.bindGroups.forget(buffer);
    this.device.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.errors.push(error?.message ?? String(error));
    });
    void this.device.lost.then((info) => {
      this.lostMessage =
        info.reason === 'destroyed'
          ? 'The GPU device was closed by the application; start a new session to use the GPU again.'
          : `The GPU device was lost (${info.reason || 'unknown reason'}: ${info.message}). ` +
            'This happens when the driver resets or the GPU is reclaimed. Reload to get a new device; ' +
            'saved checkpoints are unaffected.';
    });
  }

  get isLost(): boolean {
    return this.lostMessage !== null;
  }

  /** Throws if the device was lost or a WebGPU validation error was reported since the last check. */
  checkHealth(): void {
    if (this.lostMessage) throw new DeviceLostError(this.lostMessage);
    if (this.errors.length > 0) {
      const messages = this.errors.splice(0, this.errors.length);
      throw new GpuError(`WebGPU reported an error: ${messages.join(' | ')}`);
    }
  }

  // ---- pipelines ----------------------------------------------------------------------------

  private key(spec: KernelSpec): string {
    const constants = spec.constants
      ? Object.entries(spec.constants)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => `${k}=${v}`)
          .join(',')
      : '';
    return `${spec.name}|${spec.entry}|${constants}|${spec.bindings.join('')}`;
  }

  private module(spec: KernelSpec): GPUShaderModule {
    let module = this.modules.get(spec.code);
    if (!module) {
      module = this.device.createShaderModule({ code: spec.code, label: spec.name });
      this.modules.set(spec.code, module);
      // Compilation messages arrive asynchronously; keep errors so the next check names the shader.
      void module.getCompilationInfo?.().then((info) => {
        for (const m of info.messages) {
          if (m.type === 'error') this.errors.push(`${spec.name} line ${m.lineNum}:${m.linePos}: ${m.message}`);
        }
      });
    }
    return module;
  }

  private pipelineLayout(spec: KernelSpec): GPUPipelineLayout {
    const layoutKey = spec.bindings.join('');
    let layout = this.pipelineLayouts.get(layoutKey);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform', hasDynamicOffset: true } },
        ...spec.bindings.map((access, i) => ({
          binding: i + 1,
          visibility: 4,
          buffer: { type: access === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
        })),
      ];
      const group = this.device.createBindGroupLayout({ entries, label: `layout ${layoutKey}` });
      this.layouts.set(layoutKey, group);
      layout = this.device.createPipelineLayout({ bindGroupLayouts: [group] });
      this.pipelineLayouts.set(layoutKey, layout);
    }
    return layout;
  }

  private descriptor(spec: KernelSpec): GPUComputePipelineDescriptor {
    return {
      label: this.key(spec),
      layout: this.pipelineLayout(spec),
      compute: { module: this.module(spec), entryPoint: spec.entry, constants: spec.constants },
    };
  }

  /** The pipeline for a kernel variant, compiled once (synchronously on first use if not prewarmed). */
  pipeline(spec: KernelSpec): GPUComputePipeline {
    const key = this.key(spec);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline(this.descriptor(spec));
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /** Compiles kernel variants ahead of use, asynchronously, de-duplicating in-flight compiles. */
  async compile(specs: readonly KernelSpec[], onProgress?: (done: number, total: number) => void): Promise<void> {
    let done = 0;
    await Promise.all(
      specs.map(async (spec) => {
        const key = this.key(spec);
        if (!this.pipelines.has(key)) {
          let promise = this.pending.get(key);
          if (!promise) {
            promise = this.device.createComputePipelineAsync(this.descriptor(spec));
            this.pending.set(key, promise);
          }
          try {
            this.pipelines.set(key, await promise);
          } catch (error) {
            throw new GpuError(`compiling ${spec.name} (${spec.entry}) failed: ${(error as Error).message}`);
          } finally {
            this.pending.delete(key);
          }
        }
        onProgress?.(++done, specs.length);
      }),
    );
  }

  /**
   * Compiles, asynchronously and with progress, every kernel variant that `work` would dispatch.
   * `work` runs in capture mode: its dispatches are collected, not executed, so its outputs are
   * garbage; run it inside tidy(). Use before the first training step or sample so shader compilation
   * never blocks a step and the UI can show progress.
   */
  async prewarm(work: () => void, onProgress?: (done: number, total: number) => void): Promise<number> {
    this.flush();
    const captured = new Map<string, KernelSpec>();
    this.captured = captured;
    try {
      work();
    } finally {
      this.captured = null;
      this.pool.mark(); // the captured work's requests are not a step's: the next step counts from here
    }
    const specs = [...captured.values()].filter((spec) => !this.pipelines.has(this.key(spec)));
    await this.compile(specs, onProgress);
    return specs.length;
  }

  // ---- dispatch -----------------------------------------------------------------------------

  /**
   * Records one dispatch. `params` fills the uniform at @binding(0) (at most 64 words);
   * `buffers` bind in order at @binding(1..n). Nothing is submitted until the batch fills or flush().
   */
  dispatch(spec: KernelSpec, buffers: readonly (GPUBuffer | GPUBufferBinding)[], params: ArrayLike<number>, workgroups: readonly number[]): void {
    if (buffers.length !== spec.bindings.length) {
      throw new GpuError(`${spec.name}: ${buffers.length} buffers bound, kernel expects ${spec.bindings.length}`);
    }
    if (params.length > MAX_PARAM_WORDS) throw new GpuError(`${spec.name}: ${params.length} param words > ${MAX_PARAM_WORDS}`);
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return; // empty tensors: nothing to do
    if (x > MAX_WORKGROUPS_PER_DIM || y > MAX_WORKGROUPS_PER_DIM || z > MAX_WORKGROUPS_PER_DIM) {
      throw new GpuError(`${spec.name}: dispatch ${x}x${y}x${z} exceeds ${MAX_WORKGROUPS_PER_DIM} workgroups per dimension`);
    }
    if (this.captured) {
      this.captured.set(this.key(spec), spec);
      return;
    }
    this.onDispatch?.(spec, buffers, Uint32Array.from(params), workgroups);
    const pipeline = this.pipeline(spec);
    const pass = this.openPass();
    const slot = this.dispatchesInBatch;
    this.paramsData.set(params as ArrayLike<number>, (slot * PARAM_STRIDE_BYTES) / 4);
    const layoutKey = spec.bindings.join('');
    const layout = this.layouts.get(layoutKey)!;
    const bindGroup = this.bindGroups.get(layoutKey, layout, this.paramsBuffer!, PARAM_STRIDE_BYTES, buffers);
    this.recording?.push({
      kind: 'dispatch',
      pipeline,
      bindGroup,
      params: Uint32Array.from(params),
      workgroups: [x, y, z],
      buffers: buffers.map((b) => ('buffer' in b ? b.buffer : b) as GPUBuffer),
    });
    this.issue(pass, pipeline, bindGroup, x, y, z);
  }

  private issue(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number): void {
    this.dynamicOffset[0] = this.dispatchesInBatch * PARAM_STRIDE_BYTES;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup, this.dynamicOffset, 0, 1);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatchesInBatch += 1;
    this.dispatchCount += 1;
    if (this.dispatchesInBatch === DISPATCHES_PER_SUBMIT) this.flush();
  }

  /**
   * Runs `work` as usual and also returns its dispatches with their pipelines and bind groups
   * resolved. A measuring instrument (the benchmark's host floor): buffer copies, clears and writes
   * inside `work` are not kept, so replaying the list is not the same computation as `work`.
   */
  captureDispatches(work: () => void): ResolvedDispatch[] {
    return this.captureCommands(work).commands.flatMap((c) => (c.kind === 'dispatch' ? [c] : []));
  }

  /** True inside captureCommands / captureDispatches (they do not nest). */
  get capturing(): boolean {
    return this.recording !== null;
  }

  /**
   * Runs `work` as usual and also returns every GPU command it recorded (dispatches, copies, clears,
   * writes), resolved, in order; `read` is true when `work` read a buffer back (not replayable).
   */
  captureCommands(work: () => void): { commands: RecordedCommand[]; read: boolean } {
    if (this.recording) throw new GpuError('captureCommands: already capturing');
    const commands: RecordedCommand[] = [];
    this.recording = commands;
    this.recordingRead = false;
    try {
      work();
    } finally {
      this.recording = null;
    }
    return { commands, read: this.recordingRead };
  }

  /**
   * Issues recorded commands again, in order, batched as dispatch() does: the same computation as the
   * work that recorded them, provided every buffer they touch still holds what it held then (the
   * caller's to ensure: see models/step-replay.ts).
   */
  replayCommands(list: readonly RecordedCommand[]): void {
    for (const c of list) {
      if (c.kind === 'dispatch') this.issueResolved(c);
      else if (c.kind === 'copy') this.copy(c.src, c.srcOffset, c.dst, c.dstOffset, c.bytes);
      else if (c.kind === 'clear') this.clear(c.buffer, c.offset, c.bytes);
      else this.write(c.buffer, c.data, c.offset);
    }
  }

  /**
   * Records captured dispatches again, batched and submitted as dispatch() does, with none of the
   * engine's per-dispatch work (kernel specs, cache keys, bind-group lookup): what recording and
   * submitting them costs the host in WebGPU itself. The bind groups must still be alive.
   */
  replayDispatches(list: readonly ResolvedDispatch[]): void {
    for (const d of list) this.issueResolved(d);
  }

  private issueResolved(d: ResolvedDispatch): void {
    const pass = this.openPass();
    this.paramsData.set(d.params, (this.dispatchesInBatch * PARAM_STRIDE_BYTES) / 4);
    this.issue(pass, d.pipeline, d.bindGroup, d.workgroups[0], d.workgroups[1], d.workgroups[2]);
  }

  private openPass(): GPUComputePassEncoder {
    if (!this.encoder) {
      this.encoder = this.device.createCommandEncoder();
      this.paramsBuffer ??= this.device.createBuffer({
        size: this.paramsData.byteLength,
        usage: BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST,
        label: 'params',
      });
    }
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  /**
   * The batch's encoder with no compute pass open, for a buffer command between dispatches.
   * Consecutive buffer commands share the gap between two passes (no empty pass opened for each).
   */
  private encoderBetweenPasses(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    } else if (!this.encoder) {
      this.openPass();
      this.pass!.end();
      this.pass = null;
    }
    this.copyCount += 1;
    return this.encoder!;
  }

  /** Records a buffer-to-buffer copy in the current batch (closing the open compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.recording?.push({ kind: 'copy', src, srcOffset, dst, dstOffset, bytes });
    this.encoderBetweenPasses().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Records zeroing `bytes` bytes of `buffer` from `offset` in the current batch (counted as a copy). */
  clear(buffer: GPUBuffer, offset: number, bytes: number): void {
    if (bytes <= 0) return;
    this.recording?.push({ kind: 'clear', buffer, offset, bytes });
    this.encoderBetweenPasses().clearBuffer(buffer, offset, bytes);
  }

  /** Submits everything recorded so far. Cheap when nothing is pending. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) this.pass.end();
    const params = this.paramsBuffer!;
    this.device.queue.writeBuffer(params, 0, this.paramsData, 0, (this.dispatchesInBatch * PARAM_STRIDE_BYTES) / 4);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pass = null;
    this.dispatchesInBatch = 0;
    this.submitCount += 1;
    this.pool.afterSubmit();
  }

  // ---- upload and readback ------------------------------------------------------------------

  /** Writes host data into a buffer. Ordered after all dispatches recorded so far. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
    // queue.writeBuffer runs at submit time of the queue, ahead of the open batch: flush first so a
    // write never overtakes a dispatch recorded before it.
    this.flush();
    this.recording?.push({ kind: 'write', buffer, offset: offsetBytes, data: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) });
    this.device.queue.writeBuffer(buffer, offsetBytes, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies `bytes` from a buffer to the host. The one place the engine waits for the GPU. */
  async read(buffer: GPUBuffer, bytes: number, offsetBytes = 0): Promise<ArrayBuffer> {
    this.checkHealth();
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.acquireStaging(size);
    if (this.recording) this.recordingRead = true;
    this.encoderBetweenPasses().copyBufferToBuffer(buffer, offsetBytes, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */, 0, size);
    } catch (error) {
      this.checkHealth();
      throw new GpuError(`reading back ${bytes} bytes failed: ${(error as Error).message}`);
    }
    const copy = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.stagingFree.push(staging);
    this.checkHealth();
    return copy;
  }

  private acquireStaging(size: number): GPUBuffer {
    const index = this.stagingFree.findIndex((b) => b.size >= size && b.size <= size * 4);
    if (index >= 0) return this.stagingFree.splice(index, 1)[0];
    return this.device.createBuffer({ size: Math.max(size, 256), usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST, label: 'staging' });
  }

  private inFlight: Promise<void> | null = null;

  /**
   * Keeps the CPU at most one call ahead of the GPU: submits what is recorded, then waits for the
   * work submitted at the previous call. Loops call it once per step, so the GPU always has the next
   * step queued (no idle gap) while recorded work cannot pile up without bound.
   */
  async throttle(): Promise<void> {
    this.flush();
    this.pool.mark();
    const previous = this.inFlight;
    this.inFlight = this.device.queue.onSubmittedWorkDone();
    if (previous) await previous;
    this.checkHealth();
  }

  /** Resolves when the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    this.pool.mark();
    await this.device.queue.onSubmittedWorkDone();
    this.checkHealth();
  }

  stats(): ContextStats {
    return {
      ...this.pool.stats(),
      ...this.bindGroups.stats(),
      pipelines: this.pipelines.size,
      dispatches: this.dispatchCount,
      copies: this.copyCount,
      submits: this.submitCount,
    };
  }

  /** Bind groups held now that bind `buffer` (tests check that destroyed buffers leave none). */
  bindGroupsOver(buffer: GPUBuffer): number {
    return this.bindGroups.boundTo(buffer);
  }

  destroy(): void {
    this.flush();
    this.bindGroups.clear();
    this.device.destroy();
  }
}

/** Splits a 1-D dispatch of `count` workgroups into x*y <= 65535 each (kernels rebuild the linear id). */
export function grid1d(workgroups: number): [number, number] {
  if (workgroups <= MAX_WORKGROUPS_PER_DIM) return [workgroups, 1];
  const y = Math.ceil(workgroups / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(workgroups / y), y];
}
