// Matrix multiply C[b] = op(A[b]) op(B[b]) (+ bias over columns), op = identity or transpose.
// Register-blocked: each thread computes a 4x4 block of C held in four vec4 accumulators, walking K
// four at a time. No workgroup memory and no barriers (they are very slow on the CPU adapters,
// SwiftShader and lavapipe); neighbouring threads read neighbouring columns, so caches do the sharing.
//
// Storage is declared as array<vec4<f32>> (pool buffers are multiples of 256 bytes, so every tensor
// binds whole vec4s). With VEC_A / VEC_B the host guarantees the contiguous axis of that operand is a
// multiple of 4, and 4 values are one vec4 load; otherwise they are 4 scalar loads. Rows past M and
// columns past N are clamped on load (their results are never written); a K tail is masked.
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

/// A at base + idx (4 arbitrary offsets).
fn a_gather(base: u32, idx: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(a_at(base + idx.x), a_at(base + idx.y), a_at(base + idx.z), a_at(base + idx.w));
}

fn b_gather(base: u32, idx: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(b_at(base + idx.x), b_at(base + idx.y), b_at(base + idx.z), b_at(base + idx.w));
}

fn b4(i: u32) -> vec4<f32> {
  if (VEC_B) { return b[i >> 2u]; }
  return vec4<f32>(b_at(i), b_at(i + 1u), b_at(i + 2u), b_at(i + 3u));
}

/// C[row, n0..n0+3], the columns that exist.
fn store_row(row: u32, n0: u32, N: u32, v: vec4<f32>) {
  c[row + n0] = v.x;
  if (n0 + 1u < N) { c[row + n0 + 1u] = v.y; }
  if (n0 + 2u < N) { c[row + n0 + 2u] = v.z; }
  if (n0 + 3u < N) { c[row + n0 + 3u] = v.w; }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let n0 = (wid.x * WG_X + lid.x) * 4u;
  // With WG_Y == 1 the row block depends on the workgroup only: every A load is then uniform across
  // the workgroup, which SIMD-across-invocations compilers (llvmpipe, SwiftShader) turn into one
  // scalar load instead of a per-lane gather.
  let m0 = select(wid.y * WG_Y + lid.y, wid.y, WG_Y == 1u) * 4u;
  if (n0 >= N || m0 >= M) { return; }
  let batch = wid.z;
  let a_base = batch * p.a_batch_stride;
  let b_base = batch * p.b_batch_stride;

  // Clamped row (of C) and column indices: out-of-range lanes recompute a valid row, never stored.
  let r = min(vec4<u32>(m0, m0 + 1u, m0 + 2u, m0 + 3u), vec4<u32>(M - 1u));
  let q = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(N - 1u));

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);

  // K in steps of 4. In the last step k indices past K are clamped for the loads and both operands
  // are zeroed there (select, so whatever the clamped loads read cannot leak in as NaN).
  let k_end = (K + 3u) & ~3u;
  for (var k = 0u; k < k_end; k += 4u) {
    let ks = vec4<u32>(k, k + 1u, k + 2u, k + 3u);
    let live = ks < vec4<u32>(K);
    let kc = min(ks, vec4<u32>(K - 1u));
    // A block: ar[i] = A[r_i, k..k+3]  (rows of op(A))
    var ar0: vec4<f32>; var ar1: vec4<f32>; var ar2: vec4<f32>; var ar3: vec4<f32>;
    if (TRANS_A) {
      // stored [K,M]: ac[j] = A[m0..m0+3, k+j] is contiguous along m
      var ac0: vec4<f32>; var ac1: vec4<f32>; var ac2: vec4<f32>; var ac3: vec4<f32>;
      if (VEC_A && m0 + 3u < M) {
        ac0 = a4(a_base + kc.x * M + m0);
        ac1 = a4(a_base + kc.y * M + m0);
        ac2 = a4(a_base + kc.z * M + m0);
        ac3 = a4(a_base + kc.w * M + m0);
      } else {
        ac0 = a_gather(a_base + kc.x * M, r);
        ac1 = a_gather(a_base + kc.y * M, r);
        ac2 = a_gather(a_base + kc.z * M, r);
        ac3 = a_gather(a_base + kc.w * M, r);
      }
      ar0 = vec4<f32>(ac0.x, ac1.x, ac2.x, ac3.x);
      ar1 = vec4<f32>(ac0.y, ac1.y, ac2.y, ac3.y);
      ar2 = vec4<f32>(ac0.z, ac1.z, ac2.z, ac3.z);
      ar3 = vec4<f32>(ac0.w, ac1.w, ac2.w, ac3.w);
    } else {
      // Without VEC_A the last step may run past a row's end; those lanes are zeroed below.
      ar0 = a4(a_base + r.x * K + k);
      ar1 = a4(a_base + r.y * K + k);
      ar2 = a4(a_base + r.z * K + k);
      ar3 = a4(a_base + r.w * K + k);
    }
    let zero = vec4<f32>(0.0);
    ar0 = select(zero, ar0, live);
    ar1 = select(zero, ar1, live);
    ar2 = select(zero, ar2, live);
    ar3 = select(zero, ar3, live);
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
      br0 = b4(b_base + kc.x * N + n0);
      br1 = b4(b_base + kc.y * N + n0);
      br2 = b4(b_base + kc.z * N + n0);
      br3 = b4(b_base + kc.w * N + n0);
    } else {
      br0 = b_gather(b_base + kc.x * N, q);
      br1 = b_gather(b_base + kc.y * N, q);
      br2 = b_gather(b_base + kc.z * N, q);
      br3 = b_gather(b_base + kc.w * N, q);
    }
    br0 = select(zero, br0, live.x);
    br1 = select(zero, br1, live.y);
    br2 = select(zero, br2, live.z);
    br3 = select(zero, br3, live.w);
    acc0 += ar0.x * br0 + ar0.y * br1 + ar0.z * br2 + ar0.w * br3;
    acc1 += ar1.x * br0 + ar1.y * br1 + ar1.z * br2 + ar1.w * br3;
    acc2 += ar2.x * br0 + ar2.y * br1 + ar2.z * br2 + ar2.w * br3;
    acc3 += ar3.x * br0 + ar3.y * br1 + ar3.z * br2 + ar3.w * br3;
  }

  var bias_v = vec4<f32>(0.0);
  if (HAS_BIAS) { bias_v = vec4<f32>(bias[q.x], bias[q.y], bias[q.z], bias[q.w]); }
  let c_base = batch * p.c_batch_stride;
  store_row(c_base + m0 * N, n0, N, acc0 + bias_v);
  if (m0 + 1u < M) { store_row(c_base + (m0 + 1u) * N, n0, N, acc1 + bias_v); }
  if (m0 + 2u < M) { store_row(c_base + (m0 + 2u) * N, n0, N, acc2 + bias_v); }
  if (m0 + 3u < M) { store_row(c_base + (m0 + 3u) * N, n0, N, acc3 + bias_v); }
}
