// Weight normalisation of many layers at once: W_i = g_i * v_i / ||v_i|| for every (v, g) pair in
// about pairs / K dispatches each way instead of one per layer (shaders/norm_multi.wgsl), K set by
// the adapter's storage-buffer limit (3 buffers per pair forward, 5 backward: 5 and 3 on lavapipe's
// 16, 2 and 1 at WebGPU's default of 8). The result is one multi-output op on the tape: its backward
// runs once, with every output's gradient, as grouped dispatches too.
import normMultiWgsl from '../../../shaders/norm_multi.wgsl?raw';
import type { KernelSpec } from '../../gpu/context';
import { gradTarget, recordMany } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import { empty, engine, Tensor, ShapeError, shapeString } from '../tensor';

export interface WeightNormPair {
  /** [out, ...]: a linear's [out, in] or a conv's [out, in, kh, kw]. */
  v: Tensor;
  /** [out]. */
  g: Tensor;
}

/** Most pairs per dispatch (the params uniform holds 20 row starts and 16 row lengths). */
const MAX_GROUP = 16;

const SECTION = {
  forwardRow: '// ---- forward row',
  forwardEntry: '// ---- forward entry',
  backwardRow: '// ---- backward row',
  backwardEntry: '// ---- backward entry',
};

const [COMMON, FORWARD_ROW, FORWARD_ENTRY, BACKWARD_ROW, BACKWARD_ENTRY] = (() => {
  const at = [SECTION.forwardRow, SECTION.forwardEntry, SECTION.backwardRow, SECTION.backwardEntry].map((marker) => {
    const i = normMultiWgsl.indexOf(marker);
    if (i < 0) throw new Error(`norm_multi.wgsl: section "${marker}" is missing`);
    return i;
  });
  const cuts = [0, ...at, normMultiWgsl.length];
  return cuts.slice(0, -1).map((start, i) => normMultiWgsl.slice(start, cuts[i + 1]));
})();

/** `fn name(j, r, len)` calling `name_<j>(r, len)` for the pair slot j. */
function slotSwitch(k: number, name: string): string {
  const cases = Array.from({ length: k }, (_, j) => `    case ${j}u: { ${name}_${j}(r, len); }`).join('\n');
  return `fn ${name}(j: u32, r: u32, len: u32) {\n  switch j {\n${cases}\n    default: {}\n  }\n}\n`;
}

/** The row template with its slot suffix `_J` made `_j` (word boundary: `_J` ends every templated name). */
const forSlot = (template: string, j: number): string => template.replace(/_J\b/g, `_${j}`);

const specs = new Map<string, KernelSpec>();

/** Forward for k pairs: (v_j, g_j, w_j) at bindings 1 + 3j, 2 + 3j, 3 + 3j. */
function forwardSpec(k: number): KernelSpec {
  const key = `f${k}`;
  let spec = specs.get(key);
  if (!spec) {
    const parts = [COMMON];
    for (let j = 0; j < k; j++) {
      parts.push(
        `@group(0) @binding(${1 + 3 * j}) var<storage, read> v_${j}: array<f32>;`,
        `@group(0) @binding(${2 + 3 * j}) var<storage, read> g_${j}: array<f32>;`,
        `@group(0) @binding(${3 + 3 * j}) var<storage, read_write> w_${j}: array<f32>;`,
        forSlot(FORWARD_ROW, j),
      );
    }
    parts.push(slotSwitch(k, 'forward_row'), FORWARD_ENTRY);
    const bindings: ('read' | 'rw')[] = [];
    for (let j = 0; j < k; j++) bindings.push('read', 'read', 'rw');
    spec = { name: `norm_multi.wgsl(k=${k})`, code: parts.join('\n'), entry: 'weight_norm_forward_multi', bindings };
    specs.set(key, spec);
  }
  return spec;
}

/** Backward for k pairs: (v_j, g_j, dw_j, dv_j, dg_j) at bindings 1 + 5j .. 5 + 5j. */
function backwardSpec(k: number): KernelSpec {
  const key = `b${k}`;
  let spec = specs.get(key);
  if (!spec) {
    const parts = [COMMON];
    for (let j = 0; j < k; j++) {
      const b = 1 + 5 * j;
      parts.push(
        `@group(0) @binding(${b}) var<storage, read> v_${j}: array<f32>;`,
        `@group(0) @binding(${b + 1}) var<storage, read> g_${j}: array<f32>;`,
        `@group(0) @binding(${b + 2}) var<storage, read> dw_${j}: array<f32>;`,
        `@group(0) @binding(${b + 3}) var<storage, read_write> dv_${j}: array<f32>;`,
        `@group(0) @binding(${b + 4}) var<storage, read_write> dg_${j}: array<f32>;`,
        forSlot(BACKWARD_ROW, j),
      );
    }
    parts.push(slotSwitch(k, 'backward_row'), BACKWARD_ENTRY);
    const bindings: ('read' | 'rw')[] = [];
    for (let j = 0; j < k; j++) bindings.push('read', 'read', 'read', 'rw', 'rw');
    spec = { name: `norm_multi.wgsl(k=${k})`, code: parts.join('\n'), entry: 'weight_norm_backward_multi', bindings };
    specs.set(key, spec);
  }
  return spec;
}

/** Pairs per forward and per backward dispatch on this device. */
export function weightNormGroupSizes(): { forward: number; backward: number } {
  const limit = engine().gpu.device.limits.maxStorageBuffersPerShaderStage;
  const clamp = (k: number): number => Math.max(1, Math.min(MAX_GROUP, k));
  return { forward: clamp(Math.floor(limit / 3)), backward: clamp(Math.floor(limit / 5)) };
}

/** Consecutive runs of at most k of `pairs` (indices), with the params words of their dispatch. */
function groupsOf(pairs: readonly number[], rowsOf: (i: number) => number, lenOf: (i: number) => number, k: number): { pairs: number[]; rows: number; params: Uint32Array }[] {
  const groups = [];
  for (let at = 0; at < pairs.length; at += k) {
    const members = pairs.slice(at, at + k);
    const starts: number[] = [];
    let rows = 0;
    for (const i of members) {
      starts.push(rows);
      rows += rowsOf(i);
    }
    starts.push(rows);
    const params = new Params().u(rows, members.length, 0, 0).array(starts, 20).array(members.map(lenOf), 16).build();
    groups.push({ pairs: members, rows, params });
  }
  return groups;
}

/**
 * W_i = g_i * v_i / ||v_i|| for every pair (the norm per output row, as weightNorm), in
 * ceil(pairs / K) forward dispatches. Differentiable as one op: its backward takes every output's
 * gradient at once (an output nobody used gives its v and g no gradient) and runs in
 * ceil(used pairs / K') dispatches. Pairs with no rows cost nothing.
 */
export function weightNormMany(pairs: readonly WeightNormPair[]): Tensor[] {
  for (const [i, { v, g }] of pairs.entries()) {
    if (v.rank < 2 || g.rank !== 1 || g.shape[0] !== v.shape[0] || v.dtype !== 'f32' || g.dtype !== 'f32') {
      throw new ShapeError('weightNormMany', `pair ${i}: v ${shapeString(v.shape)} (want [out, ...], f32) and g ${shapeString(g.shape)} (want [out])`);
    }
  }
  const rowsOf = (i: number): number => pairs[i].v.shape[0];
  const lenOf = (i: number): number => pairs[i].v.size / rowsOf(i);
  const live = pairs.flatMap((_, i) => (rowsOf(i) > 0 ? [i] : []));
  const k = weightNormGroupSizes();

  const outputs = pairs.map(({ v }) => empty(v.shape));
  for (const group of groupsOf(live, rowsOf, lenOf, k.forward)) {
    const buffers = group.pairs.flatMap((i) => [pairs[i].v.binding, pairs[i].g.binding, outputs[i].binding]);
    launch(forwardSpec(group.pairs.length), buffers, group.params, threadsGrid(group.rows, 64));
  }

  const inputs = pairs.flatMap(({ v, g }) => [v, g]);
  return [
    ...recordMany('weightNormMany', outputs, inputs, (dws) => {
      const grads = new Array<Tensor | null>(inputs.length).fill(null);
      for (const [i, { v, g }] of pairs.entries()) {
        if (!dws[i]) continue;
        grads[2 * i] = gradTarget(v);
        grads[2 * i + 1] = gradTarget(g);
      }
      weightNormBackwardGrouped(pairs, dws, grads);
      return grads;
    }),
  ];
}

/**
 * The grouped backward: for every pair with a gradient dws[i], writes dv and dg into grads[2i] and
 * grads[2i + 1] (allocated by the caller) in ceil(pairs / K') dispatches.
 */
export function weightNormBackwardGrouped(pairs: readonly WeightNormPair[], dws: readonly (Tensor | null)[], grads: readonly (Tensor | null)[]): void {
  const rowsOf = (i: number): number => pairs[i].v.shape[0];
  const lenOf = (i: number): number => pairs[i].v.size / rowsOf(i);
  const used = pairs.flatMap((_, i) => (rowsOf(i) > 0 && dws[i] !== null ? [i] : []));
  for (const group of groupsOf(used, rowsOf, lenOf, weightNormGroupSizes().backward)) {
    const buffers = group.pairs.flatMap((i) => [pairs[i].v.binding, pairs[i].g.binding, dws[i]!.binding, grads[2 * i]!.binding, grads[2 * i + 1]!.binding]);
    launch(backwardSpec(group.pairs.length), buffers, group.params, threadsGrid(group.rows, 64));
  }
}
