// Element-wise kernels: one entry, specialised by the override OP (see src/engine/ops/elementwise.ts
// for the table). Binary ops read a and b; unary ops bind a twice and ignore b. With BROADCAST the
// output index is unravelled and each input is read through its own strides (0 on broadcast axes).

struct Params {
  n: u32,
  rank: u32,
  s: f32,      // scalar operands of affine, clamp, pow, ...
  t: f32,
  shape: array<vec4<u32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
}

override OP: u32 = 0u;
override BROADCAST: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn sigmoid(x: f32) -> f32 {
  // Two branches so exp never overflows.
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

fn softplus(x: f32) -> f32 {
  return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn safe_tanh(x: f32) -> f32 {
  // Some drivers compute tanh through exp(2x) and return NaN past |x| ~ 44; tanh(15) is 1 in f32.
  return select(tanh(clamp(x, -15.0, 15.0)), x, is_nan(x));
}

fn apply(x: f32, z: f32) -> f32 {
  switch OP {
    // binary
    case 0u: { return x + z; }
    case 1u: { return x - z; }
    case 2u: { return x * z; }
    case 3u: { return x / z; }
    case 4u: { return select(max(x, z), x + z, is_nan(x) || is_nan(z)); }
    case 5u: { return select(min(x, z), x + z, is_nan(x) || is_nan(z)); }
    // unary (z unused)
    case 10u: { return -x; }
    case 11u: { return exp(x); }
    case 12u: { return log(x); }
    case 13u: { return sigmoid(x); }
    case 14u: { return safe_tanh(x); }
    case 15u: { return select(max(x, 0.0), x, is_nan(x)); }
    case 16u: { if (x > 0.0) { return x; } return exp(x) - 1.0; }
    case 17u: { return softplus(x); }
    case 18u: { return x / (1.0 + abs(x)); }
    case 19u: { return sqrt(x); }
    case 20u: { return x * x; }
    case 21u: { return abs(x); }
    case 22u: { return 1.0 / x; }
    case 23u: { return x * p.s + p.t; }
    case 24u: { return select(clamp(x, p.s, p.t), x, is_nan(x)); }
    case 25u: { return inverseSqrt(x + p.s); }
    case 26u: { return pow(x, p.s); }
    case 27u: { return p.s; }
    // gradients: x is the incoming gradient g, z the saved input or output
    case 40u: { return select(0.0, x, z > 0.0); }                      // relu'(input)
    case 41u: { return select(x * exp(z), x, z > 0.0); }               // elu'(input)
    case 42u: { return x * z * (1.0 - z); }                           // sigmoid'(output)
    case 43u: { return x * (1.0 - z * z); }                           // tanh'(output)
    case 44u: { return x * sigmoid(z); }                              // softplus'(input)
    case 45u: { let d = 1.0 + abs(z); return x / (d * d); }           // softsign'(input)
    case 46u: { return x * sign(z); }                                 // abs'(input)
    case 47u: { return select(0.0, x, z >= p.s && z <= p.t); }        // clamp'(input)
    case 48u: { return x * p.s * pow(z, p.s - 1.0); }                 // pow'(input)
    // Bernoulli cross-entropy from logits: x = logit, z = target in [0, 1]
    case 50u: { return softplus(x) - z * x; }
    case 51u: { return sigmoid(x) - z; }
    default: { return 0.0; }
  }
}

fn input_offset(i: u32, strides: array<vec4<u32>, 2>) -> u32 {
  var rest = i;
  var offset = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let size = p.shape[d / 4][d % 4];
    let coord = rest % size;
    rest = rest / size;
    offset += coord * strides[d / 4][d % 4];
  }
  return offset;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  if (BROADCAST) {
    y[i] = apply(a[input_offset(i, p.a_strides)], b[input_offset(i, p.b_strides)]);
  } else {
    y[i] = apply(a[i], b[i]);
  }
}

// fill: y[i] = s for every i < n (zeros, ones, gradient seeds).
@group(0) @binding(1) var<storage, read_write> fill_out: array<f32>;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) { fill_out[i] = p.s; }
}
