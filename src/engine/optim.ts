// Adam with optional gradient clipping (shaders/adam.wgsl). A step only records GPU work: no
// readback, and no allocation after the first step, which creates the arenas once and keeps them.
//
// Both moments of every tensor live in two arenas (src/engine/arena.ts: flat buffers, one slot per
// tensor). A packed model (ParamSet.pack: parameters in an arena of the same layout, gradients
// gathered in another) is updated as one tensor: one update dispatch, plus one sum of squares and
// one scale with global-norm clipping, however many tensors. Otherwise each dispatch
// (shaders/adam_multi.wgsl) serves a group of up to K tensors, K set by the adapter's storage-buffer
// limit (7 on lavapipe's 16, 2-3 at WebGPU's default of 8).
import adamWgsl from '../../shaders/adam.wgsl?raw';
import adamMultiWgsl from '../../shaders/adam_multi.wgsl?raw';
import { Params, launch, threadsGrid } from './kernels';
import { engine, keep, Tensor, ShapeError, shapeString, type Bindable } from './tensor';
import { fill } from './ops/elementwise';
import { ArenaLayout, arenaBuffer, gatherInto, scatterFrom, TensorArena, writeSlots } from './arena';
import type { KernelSpec } from '../gpu/context';

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Clip every gradient element to [-c, c] (the PixelVAE MNIST code uses 1). */
  clipValue?: number;
  /** Scale all gradients by min(1, maxNorm / global norm) (the hierarchical code uses 5). */
  clipGlobalNorm?: number;
}

const NORM_SCALE: KernelSpec = { name: 'adam.wgsl', code: adamWgsl, entry: 'norm_scale', bindings: ['rw'] };
const EMA: KernelSpec = { name: 'adam.wgsl', code: adamWgsl, entry: 'ema', bindings: ['rw', 'read'] };
const ACCUMULATE: KernelSpec = { name: 'adam.wgsl', code: adamWgsl, entry: 'accumulate', bindings: ['rw', 'read'] };

/** Partial sums per range in the global norm: one per workgroup of 64 threads, at most this many. */
const MAX_PARTIALS = 256;
const partialsFor = (n: number): number => Math.max(1, Math.min(MAX_PARTIALS, Math.ceil(n / (64 * 16))));

/** In place, on the GPU: state += momentum * (x - state) (running statistics). No gradient. */
export function movingAverageInPlace(state: Tensor, x: Tensor, momentum: number): void {
  if (state.size !== x.size || state.dtype !== 'f32' || x.dtype !== 'f32') {
    throw new ShapeError('movingAverage', `state ${shapeString(state.shape)} vs value ${shapeString(x.shape)}`);
  }
  launch(EMA, [state.binding, x.binding], new Params().u(x.size, 0, 0, 0).f(0, momentum).build(), threadsGrid(x.size));
}

/** Most tensors per dispatch (the params uniform holds 20 group starts and 16 arena offsets). */
const MAX_GROUP = 16;

const [MULTI_COMMON, MULTI_SUMSQ, MULTI_UPDATE] = (() => {
  const a = adamMultiWgsl.indexOf('// ---- sum of squares');
  const b = adamMultiWgsl.indexOf('// ---- fused Adam update');
  return [adamMultiWgsl.slice(0, a), adamMultiWgsl.slice(a, b), adamMultiWgsl.slice(b)];
})();

/** A function choosing buffer `name`j by tensor index: load (value) or store (in place). */
function switchOver(k: number, fn: string, body: (j: number) => string, signature: string, result: string | null): string {
  const cases = Array.from({ length: k }, (_, j) => `    case ${j}u: { ${body(j)} }`).join('\n');
  if (result === null) return `fn ${fn}(${signature}) {\n  switch t {\n${cases}\n    default: {}\n  }\n}\n`;
  return `fn ${fn}(${signature}) -> f32 {\n  var r = 0.0;\n  switch t {\n${cases}\n    default: {}\n  }\n  return ${result};\n}\n`;
}

const multiSpecs = new Map<string, KernelSpec>();

/** The sum-of-squares kernel for k gradients: clip at binding 1, gradients at 2..k+1. */
function sumsqSpec(k: number): KernelSpec {
  const key = `s${k}`;
  let spec = multiSpecs.get(key);
  if (!spec) {
    const decls = ['@group(0) @binding(1) var<storage, read_write> clip_rw: array<f32>;'];
    for (let j = 0; j < k; j++) decls.push(`@group(0) @binding(${2 + j}) var<storage, read> g${j}: array<f32>;`);
    const code = [MULTI_COMMON, decls.join('\n'), switchOver(k, 'load_g', (j) => `r = g${j}[i];`, 't: u32, i: u32', 'r'), MULTI_SUMSQ].join('\n');
    spec = { name: `adam_multi.wgsl(k=${k})`, code, entry: 'sumsq_multi', bindings: ['rw', ...Array<'read'>(k).fill('read')] };
    multiSpecs.set(key, spec);
  }
  return spec;
}

/** The update kernel for k tensors: m, v at 1, 2, clip at 3 with global-norm clipping, then (w, g) pairs. */
function updateSpec(k: number, global: boolean): KernelSpec {
  const key = `u${k}${global ? 'g' : ''}`;
  let spec = multiSpecs.get(key);
  if (!spec) {
    const decls = ['@group(0) @binding(1) var<storage, read_write> m: array<f32>;', '@group(0) @binding(2) var<storage, read_write> v: array<f32>;'];
    const first = global ? 4 : 3;
    if (global) decls.push('@group(0) @binding(3) var<storage, read> clip: array<f32>;');
    for (let j = 0; j < k; j++) {
      decls.push(`@group(0) @binding(${first + 2 * j}) var<storage, read_write> w${j}: array<f32>;`);
      decls.push(`@group(0) @binding(${first + 2 * j + 1}) var<storage, read> g${j}: array<f32>;`);
    }
    const code = [
      MULTI_COMMON,
      decls.join('\n'),
      global ? 'fn clip_scale() -> f32 { return clip[0]; }' : 'fn clip_scale() -> f32 { return 1.0; }',
      switchOver(k, 'load_g', (j) => `r = g${j}[i];`, 't: u32, i: u32', 'r'),
      switchOver(k, 'load_w', (j) => `r = w${j}[i];`, 't: u32, i: u32', 'r'),
      switchOver(k, 'store_w', (j) => `w${j}[i] = x;`, 't: u32, i: u32, x: f32', null),
      MULTI_UPDATE,
    ].join('\n');
    const pairs: ('read' | 'rw')[] = [];
    for (let j = 0; j < k; j++) pairs.push('rw', 'read');
    spec = { name: `adam_multi.wgsl(k=${k}${global ? ', global clip' : ''})`, code, entry: 'update_multi', bindings: ['rw', 'rw', ...(global ? (['read'] as const) : []), ...pairs] };
    multiSpecs.set(key, spec);
  }
  return spec;
}

/** Tensors per update and per sum-of-squares dispatch on this device. */
function groupSizes(global: boolean): { update: number; sumsq: number } {
  const limit = engine().gpu.device.limits.maxStorageBuffersPerShaderStage;
  const update = Math.max(1, Math.min(MAX_GROUP, Math.floor((limit - (global ? 3 : 2)) / 2)));
  const sumsq = Math.max(1, Math.min(MAX_GROUP, limit - 1));
  return { update, sumsq };
}

/** A group of tensors served by one dispatch: their indices, flat starts and element count. */
interface Group {
  tensors: number[];
  starts: number[];
  n: number;
  /** sumsq groups: first partial slot. */
  slot: number;
}

function makeGroups(active: readonly number[], sizes: readonly number[], k: number): Group[] {
  const groups: Group[] = [];
  for (let at = 0; at < active.length; at += k) {
    const tensors = active.slice(at, at + k);
    const starts: number[] = [];
    let n = 0;
    for (const t of tensors) {
      starts.push(n);
      n += sizes[t];
    }
    starts.push(n);
    groups.push({ tensors, starts, n, slot: 0 });
  }
  return groups;
}

/** In place, on the GPU: total += x (running sums that keep their buffer from step to step). No gradient. */
export function addInPlace(total: Tensor, x: Tensor): void {
  if (total.size !== x.size || total.dtype !== 'f32' || x.dtype !== 'f32') {
    throw new ShapeError('addInPlace', `total ${shapeString(total.shape)} vs value ${shapeString(x.shape)}`);
  }
  launch(ACCUMULATE, [total.binding, x.binding], new Params().u(x.size, 0, 0, 0).build(), threadsGrid(x.size));
}

/**
 * Adam (Kingma & Ba) in the TF / Lasagne form: step size lr * sqrt(1 - beta2^t) / (1 - beta1^t) and
 * eps added to sqrt(v). Gradients are clipped element-wise first (clipValue), then scaled by the
 * global-norm factor (clipGlobalNorm, computed on the GPU from the element-clipped gradients).
 */
export class Adam {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly clipValue: number;
  readonly clipGlobalNorm: number;
  /** Steps taken (t in the bias corrections). */
  t = 0;
  private layout: ArenaLayout | null = null;
  /** Arenas of the two moments, in the layout's order. */
  private m: Tensor | null = null;
  private v: Tensor | null = null;
  /** Zeros as long as the largest tensor: the gradient of a tensor whose gradient is missing, with missing: 'zero'. */
  private zeros: Tensor | null = null;
  /** Per-tensor copies of the moments, made by `moments` for checkpoints (see there). */
  private mirrors: { m: Tensor[]; v: Tensor[] } | null = null;
  /** Set when the mirrors were handed out: the next step reads them back (a caller may have written them). */
  private mirrorsOut = false;
  /** [scale, global norm, -, -, partial sums...] when clipGlobalNorm is set. */
  private clipState: Tensor | null = null;
  /** The groups of the last step's active pattern (reused while it is unchanged). */
  private planKey = '';
  private updateGroups: Group[] = [];
  private sumsqGroups: Group[] = [];
  private slotCount = 0;

  constructor(opts: AdamOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.clipValue = opts.clipValue ?? 0;
    this.clipGlobalNorm = opts.clipGlobalNorm ?? 0;
    if (this.clipValue < 0 || this.clipGlobalNorm < 0) throw new RangeError('Adam: clip bounds must be positive');
  }

  private init(params: readonly Tensor[]): ArenaLayout {
    // Parameters packed in an arena (ParamSet.pack): the moments take its layout, so one dispatch
    // can update every tensor, reading each element's moments at its own offset.
    const layout = TensorArena.of(params)?.layout ?? new ArenaLayout(params.map((p) => p.shape));
    this.layout = layout;
    this.m = arenaBuffer(layout);
    this.v = arenaBuffer(layout);
    this.zeros = keep(fill([Math.max(1, ...layout.sizes)], 0));
    return layout;
  }

  private plan(layout: ArenaLayout, active: readonly boolean[]): void {
    const key = active.map((a) => (a ? '1' : '0')).join('');
    if (key === this.planKey) return;
    this.planKey = key;
    const global = this.clipGlobalNorm > 0;
    const k = groupSizes(global);
    const list = active.flatMap((a, i) => (a && layout.sizes[i] > 0 ? [i] : []));
    this.updateGroups = makeGroups(list, layout.sizes, k.update);
    this.sumsqGroups = global ? makeGroups(list, layout.sizes, k.sumsq) : [];
    let slot = 0;
    for (const g of this.sumsqGroups) {
      g.slot = slot;
      slot += partialsFor(g.n);
    }
    this.slotCount = slot;
    if (global && (!this.clipState || this.clipState.size < 4 + slot)) {
      this.clipState?.dispose();
      this.clipState = keep(fill([4 + Math.max(slot, MAX_PARTIALS)], 0));
    }
  }

  /**
   * Updates every parameter in place from its gradient. A null gradient leaves its parameter and
   * moments as they are, or with missing: 'zero' counts as a zero gradient (the moments decay).
   */
  step(params: readonly Tensor[], grads: readonly (Tensor | null)[], missing: 'skip' | 'zero' = 'skip'): void {
    if (params.length !== grads.length) throw new ShapeError('Adam.step', `${params.length} parameters but ${grads.length} gradients`);
    const layout = this.layout ?? this.init(params);
    if (params.length !== layout.count) {
      throw new ShapeError('Adam.step', `${params.length} parameters, but the optimizer was built for ${layout.count}`);
    }
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      const g = grads[i];
      if (!layout.fits(i, p) || (g && !layout.fits(i, g))) {
        throw new ShapeError('Adam.step', `parameter ${i} ${shapeString(p.shape)}, gradient ${g ? shapeString(g.shape) : 'null'}, state ${shapeString(layout.shapes[i])}`);
      }
    }
    const m = this.m!;
    const v = this.v!;
    this.t += 1;
    if (this.mirrorsOut && this.mirrors) {
      gatherInto(layout, m, this.mirrors.m);
      gatherInto(layout, v, this.mirrors.v);
      this.mirrorsOut = false;
    }
    const flat = this.flatArenas(layout, params, grads, missing);
    if (flat) {
      this.stepFlat(layout, flat.values, flat.grads);
      return;
    }
    this.plan(layout, grads.map((g) => g !== null || missing === 'zero'));
    const gradOf = (i: number): Bindable => (grads[i] ?? this.zeros!).binding;
    const clipState = this.clipGlobalNorm > 0 ? this.clipState : null;
    if (clipState) {
      for (const group of this.sumsqGroups) {
        const words = new Params().u(group.n, group.slot, group.tensors.length, 0).f(this.clipValue, 0, 0, 0, 0, 0, 0, 0).array(group.starts, 20).build();
        launch(sumsqSpec(group.tensors.length), [clipState.binding, ...group.tensors.map(gradOf)], words, [partialsFor(group.n), 1]);
      }
      // With no gradient at all the norm is 0 and the scale 1 (nothing is updated anyway).
      launch(NORM_SCALE, [clipState.binding], new Params().u(0, this.slotCount, 0, 0).f(0, this.clipGlobalNorm).build(), [1, 1]);
    }
    const lrT = this.stepSize(this.t);
    for (const group of this.updateGroups) {
      const words = new Params()
        .u(group.n, 0, group.tensors.length, 0)
        .f(this.clipValue, lrT, this.beta1, this.beta2, this.eps, 0, 0, 0)
        .array(group.starts, 20)
        .array(group.tensors.map((i) => layout.offsets[i]), 16)
        .build();
      const buffers: Bindable[] = [m.binding, v.binding];
      if (clipState) buffers.push(clipState.binding);
      for (const i of group.tensors) buffers.push(params[i].binding, gradOf(i));
      launch(updateSpec(group.tensors.length, clipState !== null), buffers, words, threadsGrid(group.n));
    }
  }

  /**
   * The arenas of a step that can run as one tensor: parameters packed in an arena of the moments'
   * layout, each gradient in its slot of a gradient arena of the same layout (null ones zeroed there
   * with missing: 'zero'; with 'skip' a null gradient needs the grouped path, which leaves its
   * parameter alone).
   */
  private flatArenas(layout: ArenaLayout, params: readonly Tensor[], grads: readonly (Tensor | null)[], missing: 'skip' | 'zero'): { values: TensorArena; grads: TensorArena } | null {
    const values = TensorArena.of(params);
    if (!values || values.layout !== layout) return null;
    const first = grads.find((g) => g !== null);
    if (!first || !first.isSlice) return null;
    const arena = TensorArena.ofSlot(first);
    if (!arena || arena.layout !== layout || arena === values) return null;
    for (let i = 0; i < grads.length; i++) {
      const g = grads[i];
      if (g ? !arena.holds(i, g) : missing === 'skip') return null;
    }
    const gpu = engine().gpu;
    grads.forEach((g, i) => {
      if (!g) gpu.clear(arena.whole.buffer, layout.offsets[i] * 4, layout.sizes[i] * 4);
    });
    return { values, grads: arena };
  }

  /** One update (and one sum of squares) over the whole arenas: the padding between slots is zero in all four. */
  private stepFlat(layout: ArenaLayout, values: TensorArena, grads: TensorArena): void {
    const global = this.clipGlobalNorm > 0;
    const n = layout.total;
    const clipState = global ? this.flatClipState() : null;
    if (clipState) {
      const partials = partialsFor(n);
      const words = new Params().u(n, 0, 1, 0).f(this.clipValue, 0, 0, 0, 0, 0, 0, 0).array([0, n], 20).build();
      launch(sumsqSpec(1), [clipState.binding, grads.whole.binding], words, [partials, 1]);
      launch(NORM_SCALE, [clipState.binding], new Params().u(0, partials, 0, 0).f(0, this.clipGlobalNorm).build(), [1, 1]);
    }
    const lrT = this.stepSize(this.t);
    const words = new Params().u(n, 0, 1, 0).f(this.clipValue, lrT, this.beta1, this.beta2, this.eps, 0, 0, 0).array([0, n], 20).array([0], 16).build();
    const buffers: Bindable[] = [this.m!.binding, this.v!.binding];
    if (clipState) buffers.push(clipState.binding);
    buffers.push(values.whole.binding, grads.whole.binding);
    launch(updateSpec(1, clipState !== null), buffers, words, threadsGrid(n));
  }

  /** The clipping state with room for the flat step's partial sums. */
  private flatClipState(): Tensor {
    if (!this.clipState || this.clipState.size < 4 + MAX_PARTIALS) {
      this.clipState?.dispose();
      this.clipState = keep(fill([4 + MAX_PARTIALS], 0));
    }
    return this.clipState;
  }

  /**
   * Restores moments and the step count from a checkpoint (all sizes checked before anything is
   * written, so a bad checkpoint changes nothing).
   */
  restore(params: readonly Tensor[], m: readonly Float32Array[], v: readonly Float32Array[], t: number): void {
    if (m.length !== params.length || v.length !== params.length) {
      throw new ShapeError('Adam.restore', `${params.length} parameters but ${m.length} first and ${v.length} second moments`);
    }
    params.forEach((p, i) => {
      if (m[i].length !== p.size || v[i].length !== p.size) {
        throw new ShapeError('Adam.restore', `parameter ${i} ${shapeString(p.shape)} has moments of ${m[i].length} and ${v[i].length} values`);
      }
    });
    if (this.layout && this.layout.count !== params.length) {
      throw new ShapeError('Adam.restore', `${params.length} parameters, but the optimizer was built for ${this.layout.count}`);
    }
    const layout = this.layout ?? this.init(params);
    writeSlots(layout, this.m!, m, 'Adam.restore');
    writeSlots(layout, this.v!, v, 'Adam.restore');
    // Mirrors handed out earlier are stale now: the arenas hold the restored moments.
    this.mirrorsOut = false;
    this.t = t;
  }

  /** A new optimizer with these hyperparameters and no state. */
  withSameSettings(): Adam {
    return new Adam({ lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, clipValue: this.clipValue, clipGlobalNorm: this.clipGlobalNorm });
  }

  /**
   * The first and second moments (for checkpoints), in parameter order: per-tensor copies of the
   * arenas, current as of this call. A caller may also write them (a checkpoint restore does): the
   * next step reads them back into the arenas. Empty before the first step or restore.
   */
  get moments(): { m: readonly Tensor[]; v: readonly Tensor[] } {
    const layout = this.layout;
    if (!layout) return { m: [], v: [] };
    if (!this.mirrors) {
      const make = (): Tensor[] => layout.shapes.map((s) => keep(fill(s, 0)));
      this.mirrors = { m: make(), v: make() };
    }
    scatterFrom(layout, this.m!, this.mirrors.m);
    scatterFrom(layout, this.v!, this.mirrors.v);
    this.mirrorsOut = true;
    return this.mirrors;
  }

  /** The step size of step t (1-based): lr * sqrt(1 - beta2^t) / (1 - beta1^t). */
  stepSize(t: number): number {
    return (this.lr * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
  }

  /**
   * Whether the next step() records the same commands as the last one, given the same arguments: not
   * when moments handed out for a checkpoint must be read back first (see moments).
   */
  get repeatsLastStep(): boolean {
    return !this.mirrorsOut && this.layout !== null;
  }

  /** Counts a step whose commands were replayed (see models/step-replay.ts) instead of recorded by step(). */
  countReplayedStep(): void {
    this.t += 1;
  }

  /** [clipping scale, global gradient norm] of the last step live in the first two words of this (global-norm clipping only). */
  get clipStatistics(): Tensor | null {
    return this.clipState;
  }

  dispose(): void {
    for (const t of [this.m, this.v, this.zeros, this.clipState]) t?.dispose();
    for (const t of [...(this.mirrors?.m ?? []), ...(this.mirrors?.v ?? [])]) t.dispose();
    this.layout = null;
    this.m = this.v = this.zeros = this.clipState = null;
    this.mirrors = null;
    this.mirrorsOut = false;
    this.planKey = '';
    this.t = 0;
  }
}
