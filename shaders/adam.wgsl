// Optimizer kernels (src/engine/optim.ts) and in-place moving averages; the Adam update and the sums
// of squares are multi-tensor kernels in shaders/adam_multi.wgsl.
//
// Global-norm clipping without readback: `sumsq_multi` writes per-workgroup partial sums of squares of
// a group of gradients into clip[4 + slot + w] (each group owns a fixed range of slots), `norm_scale`
// sums all partials and writes clip[0] = maxNorm / max(norm, maxNorm) (= min(1, maxNorm / norm)) and
// clip[1] = norm; `update_multi` then reads clip[0]. Dispatches in a pass see earlier dispatches' writes.

struct Params {
  n: u32,
  slot: u32,        // norm_scale: number of partial slots
  _pad0: u32,
  _pad1: u32,
  clip_value: f32,
  lr_t: f32,        // ema: momentum; norm_scale: max norm
  beta1: f32,
  beta2: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

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

// ---- in-place moving average: s += momentum * (x - s) (batch-norm running statistics) ------------------
@group(0) @binding(1) var<storage, read_write> ema_state: array<f32>;
@group(0) @binding(2) var<storage, read> ema_x: array<f32>;

@compute @workgroup_size(256)
fn ema(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  ema_state[i] += p.lr_t * (ema_x[i] - ema_state[i]);
}

// ---- in-place sum: total += value (a training loop's running sums of its loss terms) ---------------
@group(0) @binding(1) var<storage, read_write> acc_total: array<f32>;
@group(0) @binding(2) var<storage, read> acc_value: array<f32>;

@compute @workgroup_size(256)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  acc_total[i] += acc_value[i];
}
