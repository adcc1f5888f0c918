// Training-mode batch norm of x [N, C, P] (P = H * W, or 1 for [N, C]) over every axis but C, one
// workgroup per channel (src/engine/ops/norm.ts, batchNorm), where the same arithmetic as separate
// ops took about 20 dispatches forward and 20 backward per layer:
//   forward   mean, then the biased variance of (x - mean), then y = (x - mean) * r * gamma + beta
//             with r = 1 / sqrt(var + eps), plus a residual when given (a residual block's sum);
//             saves (mean, r) per channel for the backward and, when asked, moves the running
//             statistics: s += momentum * (batch value - s).
//   backward  with xhat = (x - mean) r and g = dy * gamma: dx = r (g - mean(g) - xhat mean(g xhat)),
//             dgamma = sum(dy xhat), dbeta = sum(dy).
// Sums run over a strided loop per thread, then a tree in workgroup memory.

struct Params {
  n: u32,
  c: u32,
  plane: u32,     // P
  flags: u32,     // bit 0: gamma given; 1: beta given; 2: running statistics given (forward);
                  // 3, 4: gamma's, beta's gradient wanted (backward); 5: a residual added (forward)
  eps: f32,
  momentum: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;

fn at(c: u32, i: u32) -> u32 {
  // Element i of channel c's N * P values.
  return ((i / p.plane) * p.c + c) * p.plane + i % p.plane;
}

// Tree sums of red_a (and red_b when `both`) into element 0; every thread returns the totals.
fn reduce(lid: u32, both: bool) -> vec2<f32> {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red_a[lid] += red_a[lid + s];
      if (both) { red_b[lid] += red_b[lid + s]; }
    }
    workgroupBarrier();
  }
  let total = vec2<f32>(red_a[0], red_b[0]);
  workgroupBarrier();
  return total;
}

// ---- forward -----------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;       // (any buffer without gamma)
@group(0) @binding(3) var<storage, read> beta: array<f32>;        // (any buffer without beta)
@group(0) @binding(4) var<storage, read> residual: array<f32>;    // added to y, as x (any buffer without)
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> saved: array<f32>; // [2C]: mean, then r
@group(0) @binding(7) var<storage, read_write> running_mean: array<f32>;  // [C] (a scratch word without)
@group(0) @binding(8) var<storage, read_write> running_var: array<f32>;   // [C] (likewise)

@compute @workgroup_size(256)
fn batch_norm_forward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let m = p.n * p.plane;
  var s = 0.0;
  for (var i = lid; i < m; i += WG) { s += x[at(c, i)]; }
  red_a[lid] = s;
  let mean = reduce(lid, false).x / f32(m);
  var q = 0.0;
  for (var i = lid; i < m; i += WG) {
    let d = x[at(c, i)] - mean;
    q += d * d;
  }
  red_a[lid] = q;
  let variance = reduce(lid, false).x / f32(m);
  let r = 1.0 / sqrt(variance + p.eps);
  let g = select(1.0, gamma[c], (p.flags & 1u) != 0u);
  let b = select(0.0, beta[c], (p.flags & 2u) != 0u);
  let has_residual = (p.flags & 32u) != 0u;
  for (var i = lid; i < m; i += WG) {
    let k = at(c, i);
    let out = (x[k] - mean) * r * g + b;
    y[k] = select(out, out + residual[k], has_residual);
  }
  if (lid == 0u) {
    saved[c] = mean;
    saved[p.c + c] = r;
    if ((p.flags & 4u) != 0u) {
      running_mean[c] += p.momentum * (mean - running_mean[c]);
      running_var[c] += p.momentum * (variance - running_var[c]);
    }
  }
}

// ---- backward ----------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_y: array<f32>;
@group(0) @binding(3) var<storage, read> b_gamma: array<f32>;         // (any buffer without gamma)
@group(0) @binding(4) var<storage, read> b_saved: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_x: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_gamma: array<f32>;  // [C] (a scratch word when not wanted)
@group(0) @binding(7) var<storage, read_write> grad_beta: array<f32>;   // [C] (likewise)

@compute @workgroup_size(256)
fn batch_norm_backward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let m = p.n * p.plane;
  let mean = b_saved[c];
  let r = b_saved[p.c + c];
  var sum_dy = 0.0;
  var sum_dy_xhat = 0.0;
  for (var i = lid; i < m; i += WG) {
    let k = at(c, i);
    let dy = grad_y[k];
    sum_dy += dy;
    sum_dy_xhat += dy * (b_x[k] - mean) * r;
  }
  red_a[lid] = sum_dy;
  red_b[lid] = sum_dy_xhat;
  let sums = reduce(lid, true);
  let g = select(1.0, b_gamma[c], (p.flags & 1u) != 0u);
  let mean_g = g * sums.x / f32(m);
  let mean_g_xhat = g * sums.y / f32(m);
  for (var i = lid; i < m; i += WG) {
    let k = at(c, i);
    let xhat = (b_x[k] - mean) * r;
    grad_x[k] = r * (g * grad_y[k] - mean_g - xhat * mean_g_xhat);
  }
  if (lid == 0u) {
    if ((p.flags & 8u) != 0u) { grad_gamma[c] = sums.y; }
    if ((p.flags & 16u) != 0u) { grad_beta[c] = sums.x; }
  }
}
