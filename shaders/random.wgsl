// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). Output element i comes from
// lane i%4 of the block with counter (i/4, 0, offset_lo, offset_hi) under key (seed_lo, seed_hi), so
// any (seed, offset) pair is an independent stream and the integers are identical on every adapter.
// Each thread computes one block and writes its 4 elements.

struct Params {
  n: u32,          // elements
  key_lo: u32,
  key_hi: u32,
  offset_lo: u32,
  offset_hi: u32,
  _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

/// The 64-bit product a*b as (hi, lo), from 16-bit halves (WGSL has no mulhi).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a_lo = a & 0xFFFFu; let a_hi = a >> 16u;
  let b_lo = b & 0xFFFFu; let b_hi = b >> 16u;
  let ll = a_lo * b_lo;
  let lh = a_lo * b_hi;
  let hl = a_hi * b_lo;
  let hh = a_hi * b_hi;
  let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
  let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var i = 0u; i < 10u; i++) {
    let p0 = mulhilo(PHILOX_M0, c.x);
    let p1 = mulhilo(PHILOX_M1, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k += vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

fn philox_block(t: u32) -> vec4<u32> {
  return philox(vec4<u32>(t, 0u, p.offset_lo, p.offset_hi), vec2<u32>(p.key_lo, p.key_hi));
}

/// Exact uniform in [0, 1): the top 24 bits times 2^-24.
fn to_unit(raw: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(raw >> vec4<u32>(8u)) * (1.0 / 16777216.0);
}

fn thread_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// ---- raw bits (u32) ----------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read_write> bits_out: array<u32>;

@compute @workgroup_size(64)
fn bits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_id(gid, nwg);
  let base = t * 4u;
  if (base >= p.n) { return; }
  let r = philox_block(t);
  for (var j = 0u; j < 4u; j++) { if (base + j < p.n) { bits_out[base + j] = r[j]; } }
}

// ---- uniform [0, 1) ----------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read_write> real_out: array<f32>;

@compute @workgroup_size(64)
fn uniform01(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_id(gid, nwg);
  let base = t * 4u;
  if (base >= p.n) { return; }
  let u = to_unit(philox_block(t));
  for (var j = 0u; j < 4u; j++) { if (base + j < p.n) { real_out[base + j] = u[j]; } }
}

// ---- standard normal (Box-Muller on lanes (0,1) and (2,3)) --------------------------------------
@compute @workgroup_size(64)
fn normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_id(gid, nwg);
  let base = t * 4u;
  if (base >= p.n) { return; }
  let r = philox_block(t);
  // Radii use (0, 1]: shift the 24-bit integer by one so log never sees 0.
  let u_r = (vec2<f32>(vec2<u32>(r.x, r.z) >> vec2<u32>(8u)) + 1.0) * (1.0 / 16777216.0);
  let u_t = vec2<f32>(vec2<u32>(r.y, r.w) >> vec2<u32>(8u)) * (1.0 / 16777216.0);
  let rad = sqrt(-2.0 * log(u_r));
  let theta = 6.283185307179586 * u_t;
  let z = vec4<f32>(rad.x * cos(theta.x), rad.x * sin(theta.x), rad.y * cos(theta.y), rad.y * sin(theta.y));
  for (var j = 0u; j < 4u; j++) { if (base + j < p.n) { real_out[base + j] = z[j]; } }
}

// ---- Bernoulli: 1 where uniform < prob, else 0 ----------------------------------------------------
@group(0) @binding(1) var<storage, read> prob: array<f32>;
@group(0) @binding(2) var<storage, read_write> coin: array<f32>;

@compute @workgroup_size(64)
fn bernoulli(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_id(gid, nwg);
  let base = t * 4u;
  if (base >= p.n) { return; }
  let u = to_unit(philox_block(t));
  for (var j = 0u; j < 4u; j++) {
    if (base + j < p.n) { coin[base + j] = select(0.0, 1.0, u[j] < prob[base + j]); }
  }
}
