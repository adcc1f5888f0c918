// Weight normalisation, W = g * v / ||v|| per output row (v: the direction, g: the gain), fused: one
// thread per row, so a layer's weight costs one dispatch forward and one backward instead of a chain
// of element-wise ops.

struct Params {
  rows: u32,
  row_len: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> direction: array<f32>;
@group(0) @binding(2) var<storage, read> gain: array<f32>;
@group(0) @binding(3) var<storage, read_write> weight: array<f32>;

@compute @workgroup_size(64)
fn weight_norm_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  let base = r * p.row_len;
  var sq = 0.0;
  for (var j = 0u; j < p.row_len; j++) { sq += direction[base + j] * direction[base + j]; }
  let s = gain[r] * inverseSqrt(sq);
  for (var j = 0u; j < p.row_len; j++) { weight[base + j] = direction[base + j] * s; }
}

// Backward: given dW, dg = (dW . v) / n and dv = (g / n) (dW - (dW . v) v / n^2).
@group(0) @binding(1) var<storage, read> direction_in: array<f32>;
@group(0) @binding(2) var<storage, read> gain_in: array<f32>;
@group(0) @binding(3) var<storage, read> grad_weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_direction: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_gain: array<f32>;

@compute @workgroup_size(64)
fn weight_norm_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  let base = r * p.row_len;
  var sq = 0.0;
  var dot = 0.0;
  for (var j = 0u; j < p.row_len; j++) {
    let x = direction_in[base + j];
    sq += x * x;
    dot += grad_weight[base + j] * x;
  }
  let inv = inverseSqrt(sq);
  let scale = gain_in[r] * inv;
  let k = dot * inv * inv;
  for (var j = 0u; j < p.row_len; j++) { grad_direction[base + j] = scale * (grad_weight[base + j] - k * direction_in[base + j]); }
  grad_gain[r] = dot * inv;
}
