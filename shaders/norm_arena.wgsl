// Weight normalisation of every layer of a model in one dispatch each way (src/engine/ops/norm-arena.ts),
// for parameters packed in an arena (ParamSet.pack): v and g are read at their offsets in the values
// arena, each W is written to its slot of one weights arena, and backward reads every dW from one
// buffer and writes dv and dg at v's and g's offsets in the gradient arena (the values' layout).
// The arithmetic is shaders/norm.wgsl's, in the same order: one thread per output row,
//   W = g v / ||v||;  backward, given dW: dg = (dW . v) / n, dv = (g / n) (dW - (dW . v) v / n^2).
// Pair j's row of the flat row range is found by binary search over the pairs' first rows. The two
// entry points bind binding 3 differently, so norm-arena.ts compiles the common part with one section.

struct Params {
  rows: u32,   // rows of all pairs
  pairs: u32,
  _pad0: u32,
  _pad1: u32,
}

// Per pair, 8 words: first row, elements per row, v's, g's and W's (or dW's) element offsets, pad.
struct Pair {
  row_start: u32,
  len: u32,
  v_off: u32,
  g_off: u32,
  w_off: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<Pair>;
@group(0) @binding(2) var<storage, read> values: array<f32>;

// The pair whose rows hold flat row i: the last j with row_start <= i.
fn pair_of(i: u32) -> u32 {
  var lo = 0u;
  var hi = p.pairs;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (table[mid].row_start <= i) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// Flat row i: its pair, and where its v row and its W (or dW) row start.
struct Row {
  q: Pair,
  r: u32,
  v: u32,
  w: u32,
}

fn row_at(i: u32) -> Row {
  let q = table[pair_of(i)];
  let r = i - q.row_start;
  return Row(q, r, q.v_off + r * q.len, q.w_off + r * q.len);
}

// ---- forward: values (v, g) -> weights (W) -------------------------------------------------------
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

@compute @workgroup_size(64)
fn weight_norm_forward_arena(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = row_of(gid, nwg);
  if (i >= p.rows) { return; }
  let row = row_at(i);
  let len = row.q.len;
  var sq = 0.0;
  for (var e = 0u; e < len; e++) { sq += values[row.v + e] * values[row.v + e]; }
  let s = values[row.q.g_off + row.r] * inverseSqrt(sq);
  for (var e = 0u; e < len; e++) { weights[row.w + e] = values[row.v + e] * s; }
}

// ---- backward: values (v, g) and dW -> grads (dv, dg at v's and g's offsets) ---------------------
// A pair with empty rows (len 0) has dg = 0: W does not depend on g then (norm.wgsl's 0 * inf is NaN).
@group(0) @binding(3) var<storage, read> grad_weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(64)
fn weight_norm_backward_arena(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = row_of(gid, nwg);
  if (i >= p.rows) { return; }
  let row = row_at(i);
  let len = row.q.len;
  var sq = 0.0;
  var dot = 0.0;
  for (var e = 0u; e < len; e++) {
    let x = values[row.v + e];
    sq += x * x;
    dot += grad_weights[row.w + e] * x;
  }
  let inv = inverseSqrt(sq);
  let scale = values[row.q.g_off + row.r] * inv;
  let k = dot * inv * inv;
  for (var e = 0u; e < len; e++) { grads[row.v + e] = scale * (grad_weights[row.w + e] - k * values[row.v + e]); }
  grads[row.q.g_off + row.r] = select(dot * inv, 0.0, len == 0u);
}
