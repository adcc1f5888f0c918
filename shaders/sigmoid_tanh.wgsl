// y = sigmoid(a) * tanh(b), element-wise, for two tensors of one shape: the hierarchical model's
// masked gate (its two halves come from two separate convs, so conv's interleaved gate does not
// apply). One dispatch forward and one backward (src/engine/ops/elementwise.ts, sigmoidTanh), where
// sigmoid, tanh, a product and their three gradients took six.

struct Params {
  count: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn index_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// elementwise.wgsl's NaN-safe forms, so the fused gate gives the separate ops' values (NaN included).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn sigmoid_of(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

fn tanh_of(x: f32) -> f32 {
  return select(tanh(clamp(x, -15.0, 15.0)), x, is_nan(x));
}

// ---- forward -------------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn sigmoid_tanh_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index_of(gid, nwg);
  if (i >= p.count) { return; }
  y[i] = sigmoid_of(a[i]) * tanh_of(b[i]);
}

// ---- backward: da = dy tanh(b) s (1 - s), db = dy s (1 - t^2) with s = sigmoid(a), t = tanh(b) ----------
@group(0) @binding(1) var<storage, read> b_a: array<f32>;
@group(0) @binding(2) var<storage, read> b_b: array<f32>;
@group(0) @binding(3) var<storage, read> grad_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_a: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_b: array<f32>;

@compute @workgroup_size(256)
fn sigmoid_tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index_of(gid, nwg);
  if (i >= p.count) { return; }
  let s = sigmoid_of(b_a[i]);
  let t = tanh_of(b_b[i]);
  let dy = grad_y[i];
  grad_a[i] = dy * t * s * (1.0 - s);
  grad_b[i] = dy * s * (1.0 - t * t);
}
