// Tape-based reverse-mode autograd. An op computes its output with kernels, then calls record()
// with a closure that maps the output's gradient to its inputs' gradients. Backward closures are
// built from ops too, so every gradient runs on the GPU.
import { empty, engine, Tensor, ShapeError, shapeString, type TapeNode } from './tensor';

/** Attaches a backward closure to an op's output, when any input needs a gradient. */
export function record(op: string, output: Tensor, inputs: readonly Tensor[], backward: TapeNode['backward'], opts: { accumulates?: readonly number[] } = {}): Tensor {
  const e = engine();
  if (e.gradEnabled && inputs.some((t) => t.requiresGrad)) {
    output.requiresGrad = true;
    output.node = { op, inputs, backward, ...(opts.accumulates?.length ? { accumulates: opts.accumulates } : {}) };
  }
  return output;
}

/**
 * The shared record of a multi-output op: its backward maps all outputs' gradients (null for an
 * output the result does not depend on) to its inputs' gradients in one call, so an op that serves
 * many outputs per dispatch can do the same backward.
 */
interface TapeGroup {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly outputs: number;
  readonly backward: (gradOutputs: readonly (Tensor | null)[]) => readonly (Tensor | null)[];
}

/**
 * The node of one output of a multi-output op. Its inputs are all the op's inputs, so that the
 * topological order puts every one of them before every output: the group's backward, run when the
 * last of its outputs is reached, then hands gradients to inputs not yet visited.
 */
interface GroupNode extends TapeNode {
  readonly group: TapeGroup;
  readonly index: number;
}

function isGroupNode(node: TapeNode): node is GroupNode {
  return 'group' in node;
}

/**
 * Attaches one backward to several outputs of an op, when any input needs a gradient: `backward`
 * gets every output's gradient (null where none reached it) and returns one per input.
 */
export function recordMany(
  op: string,
  outputs: readonly Tensor[],
  inputs: readonly Tensor[],
  backward: (gradOutputs: readonly (Tensor | null)[]) => readonly (Tensor | null)[],
): readonly Tensor[] {
  const e = engine();
  if (e.gradEnabled && inputs.some((t) => t.requiresGrad)) {
    const group: TapeGroup = { op, inputs, outputs: outputs.length, backward };
    outputs.forEach((output, index) => {
      const node: GroupNode = {
        op,
        inputs,
        group,
        index,
        backward: () => {
          throw new Error(`${op}: an output of a multi-output op has no backward of its own`);
        },
      };
      output.requiresGrad = true;
      output.node = node;
    });
  }
  return outputs;
}

/** Runs fn without recording the tape (evaluation, sampling, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const e = engine();
  const before = e.gradEnabled;
  e.gradEnabled = false;
  try {
    return fn();
  } finally {
    e.gradEnabled = before;
  }
}

/** Marks a tensor as a leaf that wants gradients (a parameter). */
export function param(tensor: Tensor): Tensor {
  tensor.requiresGrad = true;
  return tensor;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<number>();
  // Iterative DFS: deep networks would overflow a recursive one.
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    stack.push([t, true]);
    for (const input of t.node?.inputs ?? []) if (input.requiresGrad && !seen.has(input.id)) stack.push([input, false]);
  }
  return order; // inputs before outputs
}

/** While grad() runs with `into`: each wrt leaf's destination, and the leaves already handed theirs. */
let destinations: Map<number, Tensor> | null = null;
const handedOut = new Set<number>();
/** Where an op would like an intermediate's gradient (gatherGradIn), and whether grad() is walking. */
const preferred = new WeakMap<Tensor, Tensor>();
let walking = false;

/**
 * Asks that `t`'s gradient be written to `slot` where an op can (gradTarget): an op that reads
 * many gradients at once (weight norm of a packed model) then binds one buffer for all of them.
 * Its backward still gets whatever gradient the tape gathered, and must check where it is.
 */
export function gatherGradIn(t: Tensor, slot: Tensor): void {
  if (slot.size !== t.size) throw new ShapeError('gatherGradIn', `slot ${shapeString(slot.shape)} for ${shapeString(t.shape)}`);
  preferred.set(t, slot);
}

/**
 * Where a backward closure should write the gradient of `input`: the slot grad() was asked to
 * gather it in (`into`, or gatherGradIn), the first time, so a parameter's gradient lands in its
 * arena with no copy; otherwise a new tensor. Only for a gradient the op then returns for that input.
 */
export function gradTarget(input: Tensor): Tensor {
  const slot = walking ? (destinations?.get(input.id) ?? preferred.get(input)) : undefined;
  if (!slot || slot.isDisposed || handedOut.has(input.id)) return empty(input.shape);
  handedOut.add(input.id);
  return slot.view(input.shape);
}

/**
 * Gradients of `output` (seeded with `seed`, default 1 for a scalar) with respect to `wrt`: one per
 * entry, null where `output` does not depend on it. Backward closures may return their incoming
 * gradient itself (add does), so nothing is disposed here: run training steps inside tidy(), which
 * frees every intermediate gradient at the end of the step.
 *
 * `into`: a destination per wrt entry (same shape; null for none). Each gradient ends up there (ops
 * write it there directly through gradTarget where they can; otherwise it is copied), and the
 * result is a view of it. A null result leaves its destination as it was.
 */
export function grad(output: Tensor, wrt: readonly Tensor[], seed?: Tensor, opts: { into?: readonly (Tensor | null)[] } = {}): (Tensor | null)[] {
  const into = opts.into;
  if (into && into.length !== wrt.length) throw new ShapeError('grad', `${into.length} destinations for ${wrt.length} tensors`);
  into?.forEach((d, i) => {
    if (d && (d.size !== wrt[i].size || d.dtype !== 'f32')) throw new ShapeError('grad', `destination ${shapeString(d.shape)} for ${shapeString(wrt[i].shape)}`);
  });
  const e = engine();
  if (!seed && output.size !== 1) {
    throw new ShapeError('grad', `output ${shapeString(output.shape)} is not a scalar; pass a seed gradient`);
  }
  const order = topoOrder(output);
  // Multi-output ops: how many of each group's outputs the walk will visit, and their gradients so
  // far. An output's gradient is complete when it is visited (its users come after it in the order).
  const groups = new Map<TapeGroup, { left: number; grads: (Tensor | null)[] }>();
  for (const t of order) {
    const node = t.node;
    if (!node || !isGroupNode(node)) continue;
    let state = groups.get(node.group);
    if (!state) {
      state = { left: 0, grads: new Array<Tensor | null>(node.group.outputs).fill(null) };
      groups.set(node.group, state);
    }
    state.left += 1;
  }
  const grads = new Map<number, Tensor>([[output.id, seed ?? fill(output.shape, 1)]]);
  const before = e.gradEnabled;
  e.gradEnabled = false;
  if (walking) throw new Error('grad: called from inside another grad()');
  walking = true;
  if (into) {
    destinations = new Map();
    // Only leaves: an intermediate's gradient is read again by the walk.
    into.forEach((d, i) => {
      if (d && !wrt[i].node) destinations!.set(wrt[i].id, d);
    });
  }
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t.id);
      const node = t.node;
      if (!node) continue;
      let inputGrads: readonly (Tensor | null)[];
      let prior: (Tensor | null)[] | null = null;
      if (isGroupNode(node)) {
        const state = groups.get(node.group)!;
        state.grads[node.index] = g ?? null;
        state.left -= 1;
        if (state.left > 0 || state.grads.every((x) => x === null)) continue;
        inputGrads = node.group.backward(state.grads);
      } else {
        if (!g) continue;
        prior = node.accumulates ? priorsOf(node.inputs, node.accumulates, grads) : null;
        inputGrads = node.backward(g, prior ?? undefined);
      }
      node.inputs.forEach((input, k) => {
        const gi = inputGrads[k];
        if (!gi || !input.requiresGrad) return;
        if (gi.shape.length !== input.shape.length || gi.shape.some((d, j) => d !== input.shape[j])) {
          throw new ShapeError(`${node.op} backward`, `gradient ${shapeString(gi.shape)} for input ${shapeString(input.shape)}`);
        }
        const previous = grads.get(input.id);
        // An accumulating op has added the prior in its own kernel already.
        grads.set(input.id, previous && !prior?.[k] ? addInto(previous, gi) : gi);
      });
    }
  } finally {
    e.gradEnabled = before;
    destinations = null;
    handedOut.clear();
    walking = false;
  }
  if (!into) return wrt.map((t) => grads.get(t.id) ?? null);
  return wrt.map((t, i) => {
    const g = grads.get(t.id) ?? null;
    const d = into[i];
    if (!g || !d) return g;
    if (g.size > 0 && (g.gpuBuffer !== d.gpuBuffer || g.byteOffset !== d.byteOffset)) e.gpu.copy(g.gpuBuffer, g.byteOffset, d.gpuBuffer, d.byteOffset, g.size * 4);
    return d.view(t.shape);
  });
}

/**
 * The gradients gathered so far for an op's accumulating slots (null elsewhere). A tensor passed in
 * several slots gets its prior in the first of them only, so it is never counted twice.
 */
function priorsOf(inputs: readonly Tensor[], slots: readonly number[], grads: ReadonlyMap<number, Tensor>): (Tensor | null)[] {
  const firstSlot = new Map<number, number>();
  inputs.forEach((t, k) => {
    if (!firstSlot.has(t.id)) firstSlot.set(t.id, k);
  });
  return inputs.map((t, k) => (slots.includes(k) && firstSlot.get(t.id) === k && t.requiresGrad ? (grads.get(t.id) ?? null) : null));
}

// Late-bound helpers (ops import this module; these break the cycle).
let fill: (shape: readonly number[], value: number) => Tensor = () => {
  throw new Error('autograd helpers not installed');
};
let addInto: (a: Tensor, b: Tensor) => Tensor = fill as never;

export function installAutogradHelpers(helpers: {
  fill: (shape: readonly number[], value: number) => Tensor;
  add: (a: Tensor, b: Tensor) => Tensor;
}): void {
  fill = helpers.fill;
  addInto = helpers.add;
}
