// Weight normalisation of every layer of a packed model (ParamSet.pack) in one dispatch each way
// (shaders/norm_arena.wgsl): v and g are read where they sit in the parameter arena, all W go to
// one weights buffer (each layer's W a slice of it), and the backward reads every dW from one
// buffer and writes dv and dg where v and g sit in the gradient arena. weightNormMany, for
// unpacked parameters, needs about pairs / K dispatches each way (K from the storage-buffer limit).
import normArenaWgsl from '../../../shaders/norm_arena.wgsl?raw';
import type { KernelSpec } from '../../gpu/context';
import { ArenaLayout, sliceAlignment, TensorArena } from '../arena';
import { gatherGradIn, gradTarget, recordMany } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import { empty, engine, fromArray, keep, Tensor, ShapeError, shapeString } from '../tensor';
import { weightNormBackwardGrouped, type WeightNormPair } from './norm-multi';

const BACKWARD_MARK = '// ---- backward';
const [COMMON_AND_FORWARD, BACKWARD] = (() => {
  const at = normArenaWgsl.indexOf(BACKWARD_MARK);
  if (at < 0) throw new Error(`norm_arena.wgsl: section "${BACKWARD_MARK}" is missing`);
  return [normArenaWgsl.slice(0, at), normArenaWgsl.slice(at)];
})();
const FORWARD_MARK = '// ---- forward';
const COMMON = COMMON_AND_FORWARD.slice(0, COMMON_AND_FORWARD.indexOf(FORWARD_MARK));

const FORWARD: KernelSpec = { name: 'norm_arena.wgsl', code: COMMON_AND_FORWARD, entry: 'weight_norm_forward_arena', bindings: ['read', 'read', 'rw'] };
const BACKWARD_SPEC: KernelSpec = { name: 'norm_arena.wgsl', code: COMMON + BACKWARD, entry: 'weight_norm_backward_arena', bindings: ['read', 'read', 'read', 'rw'] };

const WORDS_PER_PAIR = 8;

/**
 * The fixed part of a packed model's weight norm: the pair table (first row, row length, v's, g's
 * and W's offsets), the weights' layout, the row count. Built once per model (WeightNormBank).
 */
export class WeightNormArenaPlan {
  readonly table: Tensor;
  readonly weights: ArenaLayout;
  readonly rows: number;
  /** Each pair's v and g slot in the values arena. */
  private readonly slots: [number, number][];

  constructor(
    readonly pairs: readonly WeightNormPair[],
    readonly values: TensorArena,
  ) {
    this.weights = new ArenaLayout(pairs.map(({ v }) => v.shape), sliceAlignment());
    this.slots = pairs.map(({ v, g }, i) => {
      const slots: [number, number] = [values.indexOf(v), values.indexOf(g)];
      if (slots[0] < 0 || slots[1] < 0 || v.rank < 2 || g.rank !== 1 || g.shape[0] !== v.shape[0]) {
        throw new ShapeError('weightNormArena', `pair ${i}: v ${shapeString(v.shape)} and g ${shapeString(g.shape)} must be [out, ...] and [out] slots of the parameter arena`);
      }
      return slots;
    });
    const words = new Uint32Array(Math.max(1, pairs.length) * WORDS_PER_PAIR);
    let rows = 0;
    pairs.forEach(({ v }, i) => {
      const r = v.shape[0];
      const o = i * WORDS_PER_PAIR;
      words[o] = rows;
      words[o + 1] = r > 0 ? v.size / r : 0;
      words[o + 2] = values.layout.offsets[this.slots[i][0]];
      words[o + 3] = values.layout.offsets[this.slots[i][1]];
      words[o + 4] = this.weights.offsets[i];
      rows += r;
    });
    this.rows = rows;
    this.table = keep(fromArray(words, [words.length], 'u32'));
  }

  /** Where pair i's dv and dg go in a gradient arena of the values' layout. */
  gradSlots(i: number): [number, number] {
    return this.slots[i];
  }

  dispose(): void {
    this.table.dispose();
  }
}

/**
 * W_i = g_i * v_i / ||v_i|| for every pair of `plan`, in one dispatch; each W_i a slice of one
 * buffer. Differentiable as one op. Its backward asks the tape to gather every dW_i in one buffer
 * (gatherGradIn; one still elsewhere is copied there) and, when v's and g's gradients go to a
 * gradient arena of the values' layout (grad() with `into`, as the trainers call it), runs in one
 * dispatch; otherwise it falls back to weightNormMany's grouped backward.
 */
export function weightNormArena(plan: WeightNormArenaPlan): Tensor[] {
  const { pairs, values } = plan;
  const total = Math.max(plan.weights.total, 1);
  const all = empty([total]);
  const outputs = pairs.map(({ v }, i) => all.slice(plan.weights.offsets[i], v.shape));
  all.dispose(); // the slices keep the buffer
  const words = new Params().u(plan.rows, pairs.length, 0, 0).build();
  if (plan.rows > 0) launch(FORWARD, [plan.table.binding, values.whole.binding, outputs[0].gpuBuffer], words, threadsGrid(plan.rows, 64));

  const dwAll = empty([total]);
  const dwSlots = pairs.map(({ v }, i) => dwAll.slice(plan.weights.offsets[i], v.shape));
  outputs.forEach((w, i) => gatherGradIn(w, dwSlots[i]));
  const inputs = pairs.flatMap(({ v, g }) => [v, g]);
  const result = recordMany('weightNormArena', outputs, inputs, (dws) => {
    const grads = new Array<Tensor | null>(inputs.length).fill(null);
    pairs.forEach(({ v, g }, i) => {
      if (!dws[i]) return;
      grads[2 * i] = gradTarget(v);
      grads[2 * i + 1] = gradTarget(g);
    });
    const arena = gradArenaOf(plan, grads);
    if (!arena) {
      weightNormBackwardGrouped(pairs, dws, grads);
      return grads;
    }
    const gpu = engine().gpu;
    dws.forEach((dw, i) => {
      const slot = dwSlots[i];
      if (!dw) gpu.clear(slot.gpuBuffer, slot.byteOffset, slot.size * 4); // its dv and dg are written, not returned
      else if (dw.gpuBuffer !== slot.gpuBuffer || dw.byteOffset !== slot.byteOffset) gpu.copy(dw.gpuBuffer, dw.byteOffset, slot.gpuBuffer, slot.byteOffset, dw.size * 4);
    });
    if (plan.rows > 0) launch(BACKWARD_SPEC, [plan.table.binding, values.whole.binding, dwAll.binding, arena.whole.binding], words, threadsGrid(plan.rows, 64));
    return grads;
  });
  // Backward binds the whole dW buffer: the slices hold it, and dwAll goes with the step's scope.
  return [...result];
}

/** The gradient arena every returned gradient is the right slot of (values' layout), or null. */
function gradArenaOf(plan: WeightNormArenaPlan, grads: readonly (Tensor | null)[]): TensorArena | null {
  const first = grads.find((g) => g !== null);
  if (!first) return null;
  const arena = TensorArena.ofSlot(first);
  if (!arena || arena.layout !== plan.values.layout || arena === plan.values) return null;
  for (let i = 0; i < plan.pairs.length; i++) {
    const [vs, gs] = plan.gradSlots(i);
    const dv = grads[2 * i];
    const dg = grads[2 * i + 1];
    if (dv && arena.indexOf(dv) !== vs) return null;
    if (dg && arena.indexOf(dg) !== gs) return null;
  }
  return arena;
}
