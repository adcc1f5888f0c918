// Weight normalisation, W = g * v / ||v|| per output row, fused: one thread per row, so a layer's
// weight costs one dispatch forward and one backward instead of a chain of element-wise ops.

struct Params {
  rows: u32,
  row_len: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> w: array<f32>;

@compute @workgroup_size(64)
fn weight_norm_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  let base = r * p.row_len;
  var sq = 0.0;
  for (var j = 0u; j < p.row_len; j++) { sq += v[base + j] * v[base + j]; }
  let s = g[r] * inverseSqrt(sq);
  for (var j = 0u; j < p.row_len; j++) { w[base + j] = v[base + j] * s; }
}

// Backward: given dW, dg = (dW . v) / n and dv = (g / n) (dW - (dW . v) v / n^2).
@group(0) @binding(1) var<storage, read> bv: array<f32>;
@group(0) @binding(2) var<storage, read> bg: array<f32>;
@group(0) @binding(3) var<storage, read> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> dv: array<f32>;
@group(0) @binding(5) var<storage, read_write> dg: array<f32>;

@compute @workgroup_size(64)
fn weight_norm_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  let base = r * p.row_len;
  var sq = 0.0;
  var dot = 0.0;
  for (var j = 0u; j < p.row_len; j++) {
    let x = bv[base + j];
    sq += x * x;
    dot += dw[base + j] * x;
  }
  let inv = inverseSqrt(sq);
  let scale = bg[r] * inv;
  let k = dot * inv * inv;
  for (var j = 0u; j < p.row_len; j++) { dv[base + j] = scale * (dw[base + j] - k * bv[base + j]); }
  dg[r] = dot * inv;
}
