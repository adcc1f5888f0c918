// Matrix multiply C[b] = op(A[b]) op(B[b]) (+ bias over columns), op = identity or transpose.
// Register-blocked: each thread computes a 4x4 block of C held in four vec4 accumulators, walking K
// four at a time. No workgroup memory and no barriers (they are very slow on the CPU adapters,
// SwiftShader and lavapipe); neighbouring threads read neighbouring columns, so caches do the sharing.
//
// Storage is declared as array<vec4<f32>> (pool buffers are multiples of 256 bytes, so every tensor
// binds whole vec4s). With VEC_A / VEC_B the host guarantees the contiguous axis of that operand is a
// multiple of 4, and 4 values are one vec4 load; otherwise they are 4 scalar loads. Rows past M and
// columns past N are clamped on load (their results are never written); a K tail is done one by one.
//
//   A is [M,K] row-major, or [K,M] when TRANS_A.   B is [K,N], or [N,K] when TRANS_B.   C is [M,N].

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  a_batch_stride: u32,   // elements between batch items (0 broadcasts one matrix over the batch)
  b_batch_stride: u32,
  c_batch_stride: u32,
  _pad: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override VEC_A: bool = false;
override VEC_B: bool = false;
override HAS_BIAS: bool = false;
override WG_X: u32 = 8u;   // threads along N (each 4 columns)
override WG_Y: u32 = 8u;   // threads along M (each 4 rows)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;   // bound to A when there is no bias
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn a_at(i: u32) -> f32 { return a[i >> 2u][i & 3u]; }
fn b_at(i: u32) -> f32 { return b[i >> 2u][i & 3u]; }

/// Four consecutive values of A starting at element i (i is a multiple of 4 when VEC_A).
fn a4(i: u32) -> vec4<f32> {
  if (VEC_A) { return a[i >> 2u]; }
  return vec4<f32>(a_at(i), a_at(i + 1u), a_at(i + 2u), a_at(i + 3u));
}

fn b4(i: u32) -> vec4<f32> {
  if (VEC_B) { return b[i >> 2u]; }
  return vec4<f32>(b_at(i), b_at(i + 1u), b_at(i + 2u), b_at(i + 3u));
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let n0 = gid.x * 4u;
  let m0 = gid.y * 4u;
  if (n0 >= N || m0 >= M) { return; }
  let a_base = gid.z * p.a_batch_stride;
  let b_base = gid.z * p.b_batch_stride;

  // Clamped row (of C) and column indices: out-of-range lanes recompute a valid row, never stored.
  let r = min(vec4<u32>(m0, m0 + 1u, m0 + 2u, m0 + 3u), vec4<u32>(M - 1u));
  let q = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(N - 1u));

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);

  let k4 = K & ~3u;
  for (var k = 0u; k < k4; k += 4u) {
    // A block: ar[i] = A[r_i, k..k+3]  (rows of op(A))
    var ar0: vec4<f32>; var ar1: vec4<f32>; var ar2: vec4<f32>; var ar3: vec4<f32>;
    if (TRANS_A) {
      // stored [K,M]: ac[j] = A[m0..m0+3, k+j] is contiguous along m
      var ac0: vec4<f32>; var ac1: vec4<f32>; var ac2: vec4<f32>; var ac3: vec4<f32>;
      if (VEC_A && m0 + 3u < M) {
        ac0 = a4(a_base + k * M + m0);
        ac1 = a4(a_base + (k + 1u) * M + m0);
        ac2 = a4(a_base + (k + 2u) * M + m0);
        ac3 = a4(a_base + (k + 3u) * M + m0);
      } else {
        for (var j = 0u; j < 4u; j++) {
          let row = a_base + (k + j) * M;
          let v = vec4<f32>(a_at(row + r.x), a_at(row + r.y), a_at(row + r.z), a_at(row + r.w));
          switch j { case 0u: { ac0 = v; } case 1u: { ac1 = v; } case 2u: { ac2 = v; } default: { ac3 = v; } }
        }
      }
      ar0 = vec4<f32>(ac0.x, ac1.x, ac2.x, ac3.x);
      ar1 = vec4<f32>(ac0.y, ac1.y, ac2.y, ac3.y);
      ar2 = vec4<f32>(ac0.z, ac1.z, ac2.z, ac3.z);
      ar3 = vec4<f32>(ac0.w, ac1.w, ac2.w, ac3.w);
    } else {
      ar0 = a4(a_base + r.x * K + k);
      ar1 = a4(a_base + r.y * K + k);
      ar2 = a4(a_base + r.z * K + k);
      ar3 = a4(a_base + r.w * K + k);
    }
    // B block: br[j] = B[k+j, n0..n0+3]  (rows of op(B))
    var br0: vec4<f32>; var br1: vec4<f32>; var br2: vec4<f32>; var br3: vec4<f32>;
    if (TRANS_B) {
      // stored [N,K]: bc[i] = B[k..k+3, q_i] is contiguous along k
      let bc0 = b4(b_base + q.x * K + k);
      let bc1 = b4(b_base + q.y * K + k);
      let bc2 = b4(b_base + q.z * K + k);
      let bc3 = b4(b_base + q.w * K + k);
      br0 = vec4<f32>(bc0.x, bc1.x, bc2.x, bc3.x);
      br1 = vec4<f32>(bc0.y, bc1.y, bc2.y, bc3.y);
      br2 = vec4<f32>(bc0.z, bc1.z, bc2.z, bc3.z);
      br3 = vec4<f32>(bc0.w, bc1.w, bc2.w, bc3.w);
    } else if (VEC_B && n0 + 3u < N) {
      br0 = b4(b_base + k * N + n0);
      br1 = b4(b_base + (k + 1u) * N + n0);
      br2 = b4(b_base + (k + 2u) * N + n0);
      br3 = b4(b_base + (k + 3u) * N + n0);
    } else {
      for (var j = 0u; j < 4u; j++) {
        let row = b_base + (k + j) * N;
        let v = vec4<f32>(b_at(row + q.x), b_at(row + q.y), b_at(row + q.z), b_at(row + q.w));
        switch j { case 0u: { br0 = v; } case 1u: { br1 = v; } case 2u: { br2 = v; } default: { br3 = v; } }
      }
    }
    acc0 += ar0.x * br0 + ar0.y * br1 + ar0.z * br2 + ar0.w * br3;
    acc1 += ar1.x * br0 + ar1.y * br1 + ar1.z * br2 + ar1.w * br3;
    acc2 += ar2.x * br0 + ar2.y * br1 + ar2.z * br2 + ar2.w * br3;
    acc3 += ar3.x * br0 + ar3.y * br1 + ar3.z * br2 + ar3.w * br3;
  }
  // K tail, one k at a time (scalar loads).
  for (var k = k4; k < K; k++) {
    var av: vec4<f32>;
    if (TRANS_A) {
      let row = a_base + k * M;
      av = vec4<f32>(a_at(row + r.x), a_at(row + r.y), a_at(row + r.z), a_at(row + r.w));
    } else {
      av = vec4<f32>(a_at(a_base + r.x * K + k), a_at(a_base + r.y * K + k), a_at(a_base + r.z * K + k), a_at(a_base + r.w * K + k));
    }
    var bv: vec4<f32>;
    if (TRANS_B) {
      bv = vec4<f32>(b_at(b_base + q.x * K + k), b_at(b_base + q.y * K + k), b_at(b_base + q.z * K + k), b_at(b_base + q.w * K + k));
    } else {
      let row = b_base + k * N;
      bv = vec4<f32>(b_at(row + q.x), b_at(row + q.y), b_at(row + q.z), b_at(row + q.w));
    }
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
  }

  var bias_v = vec4<f32>(0.0);
  if (HAS_BIAS) { bias_v = vec4<f32>(bias[q.x], bias[q.y], bias[q.z], bias[q.w]); }
  let c_base = gid.z * p.c_batch_stride;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m >= M) { break; }
    var v: vec4<f32>;
    switch i { case 0u: { v = acc0; } case 1u: { v = acc1; } case 2u: { v = acc2; } default: { v = acc3; } }
    v += bias_v;
    let row = c_base + m * N;
    for (var j = 0u; j < 4u; j++) {
      if (n0 + j < N) { c[row + n0 + j] = v[j]; }
    }
  }
}
