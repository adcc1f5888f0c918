// Softmax, log-softmax and the fused softmax cross-entropy along one axis (src/engine/ops/softmax.ts).
// The tensor is viewed as [outer, K, inner]; a row is (o, i) and its K elements sit at
// o*K*inner + k*inner + i. One thread per row loops over K (no workgroup memory, no barriers), so
// neighbouring threads read neighbouring addresses when inner > 1 (axis 1 of NCHW-like tensors).
// Each row's log-sum-exp is computed in one online pass: a running max m and sum s of exp(x - m),
// rescaled when the max grows, so it is stable for logits of any magnitude. Results are formed as
// (x - m) - log(s), never through m + log(s): at |x| ~ 1e3 rounding m + log(s) to f32 would cost
// ~3e-5 absolute, where x - m is exact.

struct Params {
  rows: u32,    // outer * inner
  k: u32,       // classes along the axis
  inner: u32,   // product of the axes after it
  nan_bits: u32, // 0x7fc00000, a quiet NaN (a runtime value: a constant NaN is a shader error)
}

@group(0) @binding(0) var<uniform> p: Params;

fn row_base(row: u32) -> u32 {
  let o = row / p.inner;
  return o * p.k * p.inner + (row - o * p.inner);
}

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// ---- forward: softmax (MODE 0) or log-softmax (MODE 1) ----------------------------------------
override MODE: u32 = 0u;

@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_y: array<f32>;

// (max, log sum exp(x - max)) of a row.
fn max_logsum_x(base: u32) -> vec2<f32> {
  var m = f_x[base];
  var s = 1.0;
  for (var k = 1u; k < p.k; k++) {
    let v = f_x[base + k * p.inner];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
  }
  return vec2<f32>(m, log(s));
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = linear_id(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row_base(row);
  let ml = max_logsum_x(base);
  for (var k = 0u; k < p.k; k++) {
    let at = base + k * p.inner;
    let z = (f_x[at] - ml.x) - ml.y;
    f_y[at] = select(exp(z), z, MODE == 1u);
  }
}

// ---- backward of softmax (MODE 0) and log-softmax (MODE 1) from the output y ------------------
//   softmax:     dx = y * (g - sum_k g*y)
//   log-softmax: dx = g - exp(y) * sum_k g
@group(0) @binding(1) var<storage, read> b_g: array<f32>;
@group(0) @binding(2) var<storage, read> b_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dx: array<f32>;

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = linear_id(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row_base(row);
  var dot = 0.0;
  for (var k = 0u; k < p.k; k++) {
    let at = base + k * p.inner;
    dot += select(b_g[at] * b_y[at], b_g[at], MODE == 1u);
  }
  for (var k = 0u; k < p.k; k++) {
    let at = base + k * p.inner;
    let y = b_y[at];
    b_dx[at] = select(y * (b_g[at] - dot), b_g[at] - exp(y) * dot, MODE == 1u);
  }
}

// ---- fused cross-entropy: loss[row] = logsumexp(row) - x[row, target[row]] ---------------------------
// A target >= K gives NaN (a label bug, made loud).
@group(0) @binding(1) var<storage, read> c_x: array<f32>;
@group(0) @binding(2) var<storage, read> c_t: array<u32>;
@group(0) @binding(3) var<storage, read_write> c_loss: array<f32>;

@compute @workgroup_size(64)
fn xent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = linear_id(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row_base(row);
  var m = c_x[base];
  var s = 1.0;
  for (var k = 1u; k < p.k; k++) {
    let v = c_x[base + k * p.inner];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
  }
  let t = c_t[row];
  let loss = (m - c_x[base + min(t, p.k - 1u) * p.inner]) + log(s);
  c_loss[row] = select(bitcast<f32>(p.nan_bits), loss, t < p.k);
}

// ---- fused cross-entropy backward: dx[row, k] = (softmax(x)[k] - [k == target]) * g[row] -------
// The row's log-sum-exp is recomputed (one more read of the row) rather than saved by the forward:
// a saved tensor would belong to the forward's scope and could be gone by the time backward runs.
@group(0) @binding(1) var<storage, read> d_x: array<f32>;
@group(0) @binding(2) var<storage, read> d_t: array<u32>;
@group(0) @binding(3) var<storage, read> d_g: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_dx: array<f32>;

@compute @workgroup_size(64)
fn xent_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = linear_id(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row_base(row);
  var m = d_x[base];
  var s = 1.0;
  for (var k = 1u; k < p.k; k++) {
    let v = d_x[base + k * p.inner];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
  }
  let log_s = log(s);
  let g = d_g[row];
  let t = d_t[row];
  for (var k = 0u; k < p.k; k++) {
    let at = base + k * p.inner;
    d_dx[at] = (exp((d_x[at] - m) - log_s) - select(0.0, 1.0, k == t)) * g;
  }
}
