// A VAE's latent in a training step (src/engine/ops/gaussian.ts, gaussianLatent): from the encoder's
// interleaved statistics s [N, Z, 2] (mu = s[..., 0], log sigma = s[..., 1]) and noise e [N, Z],
//   z  = mu + e * exp(log sigma)                       (the reparameterisation)
//   kl = (mu^2 + exp(2 log sigma)) / 2 - 1/2 - log sigma   (KL(q || N(0, 1)), element-wise)
// in one dispatch, and their gradient with respect to s in one more, where the slices, exp, mul,
// add and the six ops of the KL took about 25 dispatches each step. One thread per latent element.

struct Params {
  count: u32,   // N * Z
  has_dz: u32,  // backward: whether z's / kl's gradient is given (else zero)
  has_dkl: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn index_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// ---- forward -------------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> noise: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> kl: array<f32>;

@compute @workgroup_size(64)
fn gaussian_latent_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index_of(gid, nwg);
  if (i >= p.count) { return; }
  let mu = stats[2u * i];
  let log_sigma = stats[2u * i + 1u];
  z[i] = mu + noise[i] * exp(log_sigma);
  kl[i] = 0.5 * (mu * mu + exp(2.0 * log_sigma)) - 0.5 - log_sigma;
}

// ---- backward: d stats [N, Z, 2] -------------------------------------------------------------------------
//   d mu = dz + dkl * mu;   d log sigma = dz * e * exp(log sigma) + dkl * (exp(2 log sigma) - 1)
@group(0) @binding(1) var<storage, read> b_stats: array<f32>;
@group(0) @binding(2) var<storage, read> b_noise: array<f32>;
@group(0) @binding(3) var<storage, read> grad_z: array<f32>;    // (any buffer without it)
@group(0) @binding(4) var<storage, read> grad_kl: array<f32>;   // (any buffer without it)
@group(0) @binding(5) var<storage, read_write> grad_stats: array<f32>;

@compute @workgroup_size(64)
fn gaussian_latent_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index_of(gid, nwg);
  if (i >= p.count) { return; }
  let mu = b_stats[2u * i];
  let log_sigma = b_stats[2u * i + 1u];
  let dz = select(0.0, grad_z[i], p.has_dz != 0u);
  let dkl = select(0.0, grad_kl[i], p.has_dkl != 0u);
  grad_stats[2u * i] = dz + dkl * mu;
  grad_stats[2u * i + 1u] = dz * b_noise[i] * exp(log_sigma) + dkl * (exp(2.0 * log_sigma) - 1.0);
}
