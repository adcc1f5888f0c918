// Fused losses: the Bernoulli negative log-likelihood of binary images from logits, summed per image
// (forward: one thread per image), and its gradient (one thread per element), so the training loss
// costs two dispatches instead of an element-wise chain, a reduction and their backward.

struct Params {
  images: u32,
  per_image: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn softplus(x: f32) -> f32 {
  return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> nll: array<f32>;

// nll[b] = sum_i softplus(l) - x l over image b.
@compute @workgroup_size(64)
fn bernoulli_nll(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  if (b >= p.images) { return; }
  var acc = 0.0;
  let base = b * p.per_image;
  for (var i = 0u; i < p.per_image; i++) {
    let l = logits[base + i];
    acc += softplus(l) - targets[base + i] * l;
  }
  nll[b] = acc;
}

@group(0) @binding(1) var<storage, read> g_logits: array<f32>;
@group(0) @binding(2) var<storage, read> g_targets: array<f32>;
@group(0) @binding(3) var<storage, read> g_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_in: array<f32>;

// d nll[b] / d l_i = sigmoid(l_i) - x_i, times the incoming gradient of nll[b].
@compute @workgroup_size(256)
fn bernoulli_nll_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.images * p.per_image) { return; }
  g_in[i] = (sigmoid(g_logits[i]) - g_targets[i]) * g_out[i / p.per_image];
}
