// In-kernel sampling for autoregressive generation: each pass of the pixel loop samples its one
// position for every image of the batch from the logits the decoder just produced, writing the
// canvas on the GPU, so the whole loop runs with no readback. The uniforms are drawn up front.

struct Params {
  batch: u32,
  plane: u32,      // H*W: logits, canvas and noise are [B, 1, H, W]
  position: u32,   // y*W + x of the pixel sampled by this pass
  all: u32,        // 1: sample every position at once (models without an autoregressive decoder)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> noise: array<f32>;
@group(0) @binding(3) var<storage, read_write> canvas: array<f32>;
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;

fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

@compute @workgroup_size(64)
fn bernoulli_at(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;
  var i: u32;
  if (p.all == 1u) {
    if (t >= p.batch * p.plane) { return; }
    i = t;
  } else {
    if (t >= p.batch) { return; }
    i = t * p.plane + p.position;
  }
  let prob = sigmoid(logits[i]);
  probs[i] = prob;
  canvas[i] = select(0.0, 1.0, noise[i] < prob);
}
