// Optimizer kernels (src/engine/optim.ts) and in-place moving averages.
//
// Global-norm clipping without readback: `sumsq` writes per-workgroup partial sums of squares of one
// gradient into clip[4 + slot + w] (each parameter owns a fixed range of slots), `norm_scale` sums all
// partials and writes clip[0] = maxNorm / max(norm, maxNorm) (= min(1, maxNorm / norm)) and
// clip[1] = norm; `update` then reads clip[0]. Dispatches in a pass see earlier dispatches' writes.
//
// `update` is Adam in the form of Kingma & Ba section 2 (TF, Lasagne): with step size
// lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed on the CPU,
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr_t * m / (sqrt(v) + eps).

struct Params {
  n: u32,
  slot: u32,        // sumsq: first partial slot of this gradient; norm_scale: number of slots
  _pad0: u32,
  _pad1: u32,
  clip_value: f32,  // element-wise clip bound c (<= 0: off)
  lr_t: f32,        // update: bias-corrected step size; ema: momentum; norm_scale: max norm
  beta1: f32,
  beta2: f32,
  eps: f32,
}

override GLOBAL_CLIP: bool = false;

@group(0) @binding(0) var<uniform> p: Params;

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// A NaN gradient stays NaN (clamp would make it +-c and hide the divergence in a finite update).
fn clip_elem(g: f32) -> f32 {
  if (p.clip_value > 0.0) { return select(clamp(g, -p.clip_value, p.clip_value), g, is_nan(g)); }
  return g;
}

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

// ---- sum of squares of one gradient, per workgroup -------------------------------------------------
@group(0) @binding(1) var<storage, read> sq_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_clip: array<f32>;

@compute @workgroup_size(64)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = wid.x * WG + lid; i < p.n; i += nwg.x * WG) {
    let g = clip_elem(sq_grad[i]);
    acc += g * g;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var width = WG / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { sq_clip[4u + p.slot + wid.x] = partial[0]; }
}

// ---- global norm and clipping scale (one workgroup) ----------------------------------------------
@group(0) @binding(1) var<storage, read_write> ns_clip: array<f32>;

@compute @workgroup_size(64)
fn norm_scale(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.slot; i += WG) { acc += ns_clip[4u + i]; }
  partial[lid] = acc;
  workgroupBarrier();
  for (var width = WG / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norm = sqrt(partial[0]);
    let max_norm = p.lr_t;
    // A NaN norm gives a NaN scale (every update NaN, as in the reference), not max(NaN, c) = c.
    ns_clip[0] = select(max_norm / max(norm, max_norm), norm, is_nan(norm));
    ns_clip[1] = norm;
  }
}

// ---- fused Adam update of one parameter, in place ---------------------------------------------------
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> clip: array<f32>;   // bound to grad without GLOBAL_CLIP

@compute @workgroup_size(256)
fn update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var g = clip_elem(grad[i]);
  if (GLOBAL_CLIP) { g *= clip[0]; }
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  w[i] -= p.lr_t * mi / (sqrt(vi) + p.eps);
}

// ---- in-place moving average: s += momentum * (x - s) (batch-norm running statistics) ------------------
@group(0) @binding(1) var<storage, read_write> ema_state: array<f32>;
@group(0) @binding(2) var<storage, read> ema_x: array<f32>;

@compute @workgroup_size(256)
fn ema(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  ema_state[i] += p.lr_t * (ema_x[i] - ema_state[i]);
}
