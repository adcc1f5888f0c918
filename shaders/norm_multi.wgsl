// Weight normalisation of many layers per dispatch (src/engine/ops/norm-multi.ts): one dispatch
// serves a group of up to K (v, g) pairs instead of one dispatch per layer, forward and backward.
// The arithmetic is shaders/norm.wgsl's, in the same order: one thread per output row,
//   W = g v / ||v||;  backward, given dW: dg = (dW . v) / n, dv = (g / n) (dW - (dW . v) v / n^2).
//
// Each pair keeps its own buffers (every other kernel binds whole tensors), so a group binds 3
// buffers per pair forward (v, g, W) and 5 backward (v, g, dW, dv, dg). For each K, norm-multi.ts
// declares those bindings, copies the row function of a section below once per pair slot (its `_J`
// suffix becomes the slot, 0..K-1) and adds a `switch` over slots (forward_row / backward_row); the
// entry points then run row i of the group's flat row range, owned by the pair j with
// row_start[j] <= i < row_start[j + 1]. Copying the whole row loop per slot keeps the switch out of
// the inner loops.

struct Params {
  rows: u32,        // rows in the group (sum of its pairs' output rows)
  k: u32,           // pairs in the group
  _pad0: u32,
  _pad1: u32,
  row_start: array<vec4<u32>, 5>,  // row_start[j]: first group row of pair j (row_start[k] = rows)
  row_len: array<vec4<u32>, 4>,    // row_len[j]: elements per row of pair j (v's size / its rows)
}

@group(0) @binding(0) var<uniform> p: Params;

fn row_start_of(j: u32) -> u32 { return p.row_start[j / 4u][j % 4u]; }
fn row_len_of(j: u32) -> u32 { return p.row_len[j / 4u][j % 4u]; }

// The pair of group row i (k is at most 16: a linear scan).
fn pair_of(i: u32) -> u32 {
  var j = 0u;
  while (j + 1u < p.k && i >= row_start_of(j + 1u)) { j += 1u; }
  return j;
}

// ---- forward row, pair slot J. Bindings (generated): v_J, g_J (read), w_J (read_write). ----------
fn forward_row_J(r: u32, len: u32) {
  let base = r * len;
  var sq = 0.0;
  for (var e = 0u; e < len; e++) { sq += v_J[base + e] * v_J[base + e]; }
  let s = g_J[r] * inverseSqrt(sq);
  for (var e = 0u; e < len; e++) { w_J[base + e] = v_J[base + e] * s; }
}

// ---- forward entry --------------------------------------------------------------------------------
@compute @workgroup_size(64)
fn weight_norm_forward_multi(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.rows) { return; }
  let j = pair_of(i);
  forward_row(j, i - row_start_of(j), row_len_of(j));
}

// ---- backward row, pair slot J. Bindings (generated): v_J, g_J, dw_J (read), dv_J, dg_J (read_write).
// A pair with empty rows (len 0) has dg = 0: W does not depend on g then (norm.wgsl's 0 * inf is NaN).
fn backward_row_J(r: u32, len: u32) {
  let base = r * len;
  var sq = 0.0;
  var dot = 0.0;
  for (var e = 0u; e < len; e++) {
    let x = v_J[base + e];
    sq += x * x;
    dot += dw_J[base + e] * x;
  }
  let inv = inverseSqrt(sq);
  let scale = g_J[r] * inv;
  let k = dot * inv * inv;
  for (var e = 0u; e < len; e++) { dv_J[base + e] = scale * (dw_J[base + e] - k * v_J[base + e]); }
  dg_J[r] = select(dot * inv, 0.0, len == 0u);
}

// ---- backward entry -------------------------------------------------------------------------------
@compute @workgroup_size(64)
fn weight_norm_backward_multi(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.rows) { return; }
  let j = pair_of(i);
  backward_row(j, i - row_start_of(j), row_len_of(j));
}
