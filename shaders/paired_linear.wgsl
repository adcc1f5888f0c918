// Two linear maps of the same input, interleaved: y[n, 2c] = a_c . x_n + a_bias[c] and
// y[n, 2c + 1] = b_c . x_n + b_bias[c] (src/engine/ops/paired-linear.ts). A gated PixelCNN's z
// conditioning is this pair (tanh and sigmoid terms, interleaved as its gates read them); done as two
// linear layers and a concat it costs three dispatches forward and about eight backward per gate.
// One thread per output; the sizes are small (batch x 2P outputs of a latent's dimension), so plain
// loops serve every adapter.

struct Params {
  batch: u32,   // N
  inner: u32,   // K: input features
  units: u32,   // P: rows of each map (y has 2P columns)
  _pad: u32,
}

override HAS_BIAS: bool = true;

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward: y [N, 2P] -----------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight_a: array<f32>;   // [P, K]
@group(0) @binding(3) var<storage, read> weight_b: array<f32>;   // [P, K]
@group(0) @binding(4) var<storage, read> bias_a: array<f32>;     // [P] (any buffer without bias)
@group(0) @binding(5) var<storage, read> bias_b: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn paired_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let cols = 2u * p.units;
  if (i >= p.batch * cols) { return; }
  let n = i / cols;
  let col = i % cols;
  let c = col / 2u;
  var acc = 0.0;
  if ((col & 1u) == 0u) {
    for (var k = 0u; k < p.inner; k += 1u) { acc += x[n * p.inner + k] * weight_a[c * p.inner + k]; }
    if (HAS_BIAS) { acc += bias_a[c]; }
  } else {
    for (var k = 0u; k < p.inner; k += 1u) { acc += x[n * p.inner + k] * weight_b[c * p.inner + k]; }
    if (HAS_BIAS) { acc += bias_b[c]; }
  }
  y[i] = acc;
}

// ---- input gradient: dx [N, K] = sum over c of dy[n, 2c] a_c + dy[n, 2c + 1] b_c ----------------------
// With HAS_PRIOR, plus the gradient x gathered from its other users (the tape's add, done here).
override HAS_PRIOR: bool = false;
@group(0) @binding(1) var<storage, read> dx_grad_out: array<f32>;   // dy [N, 2P]
@group(0) @binding(2) var<storage, read> dx_weight_a: array<f32>;
@group(0) @binding(3) var<storage, read> dx_weight_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_x: array<f32>;
@group(0) @binding(5) var<storage, read> prior_grad_x: array<f32>;   // [N, K] (any buffer without a prior)

@compute @workgroup_size(64)
fn paired_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.batch * p.inner) { return; }
  let n = i / p.inner;
  let k = i % p.inner;
  let row = n * 2u * p.units;
  var acc = 0.0;
  for (var c = 0u; c < p.units; c += 1u) {
    acc += dx_grad_out[row + 2u * c] * dx_weight_a[c * p.inner + k] + dx_grad_out[row + 2u * c + 1u] * dx_weight_b[c * p.inner + k];
  }
  if (HAS_PRIOR) { acc += prior_grad_x[i]; }
  grad_x[i] = acc;
}

// ---- parameter gradients: da [P, K], db [P, K], and the biases' [P] (column K of each row) ---------------
// Thread (map s, unit c, column k), k = K meaning the bias: sums dy[n, 2c + s] x[n, k] (or dy alone) over n.
@group(0) @binding(1) var<storage, read> dw_grad_out: array<f32>;   // dy [N, 2P]
@group(0) @binding(2) var<storage, read> dw_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_weight_a: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_weight_b: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_bias_a: array<f32>;   // [P], or a scratch word without bias
@group(0) @binding(6) var<storage, read_write> grad_bias_b: array<f32>;

@compute @workgroup_size(64)
fn paired_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let row_len = p.inner + 1u;
  if (i >= 2u * p.units * row_len) { return; }
  let s = i / (p.units * row_len);
  let c = (i / row_len) % p.units;
  let k = i % row_len;
  let col = 2u * c + s;
  let cols = 2u * p.units;
  var acc = 0.0;
  if (k < p.inner) {
    for (var n = 0u; n < p.batch; n += 1u) { acc += dw_grad_out[n * cols + col] * dw_x[n * p.inner + k]; }
    if (s == 0u) { grad_weight_a[c * p.inner + k] = acc; } else { grad_weight_b[c * p.inner + k] = acc; }
  } else if (HAS_BIAS) {
    for (var n = 0u; n < p.batch; n += 1u) { acc += dw_grad_out[n * cols + col]; }
    if (s == 0u) { grad_bias_a[c] = acc; } else { grad_bias_b[c] = acc; }
  }
}
