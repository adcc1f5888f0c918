// In-kernel sampling for the hierarchical PixelVAE's autoregressive loops (src/models/hierarchical).
// Each pass of a loop samples one position for every image of the batch from the outputs the
// decoder just produced and writes it into the canvas, so a whole loop runs with no readback. The
// noise is drawn up front (a seed decides it), which is what lets a level's noise be held fixed.
//
//   categorical_at: a 256-way sub-pixel (colour channel `channel` at raster position `position`)
//     by inverse CDF: the smallest k with sum_{j<=k} softmax(logits)_j > u, u ~ U[0,1) pre-drawn
//     (the reference's argmax(cumsum(p) >= u)). Logits are [B, K, C, H, W] (class axis 1, the
//     layout of the pixel decoder's output viewed as [B, 256, C, H, W]); canvas and uniforms are
//     [B, C, H, W] (canvas u32, uniforms f32).
//   gaussian_at: every channel of a latent position at once (the latent PixelCNN predicts a
//     position's channels jointly): raw is [B, 2L, h, w] (mu half first, then the sigma half),
//     mu = 2 softsign(raw_mu / 2), sigma = max(0.5 (softsign(raw_sigma) + 1), floor), and
//     z[b, l, position] = mu + sigma * eps[b, l, position], eps ~ N(0, 1) pre-drawn, z [B, L, h, w].

struct Params {
  batch: u32,
  plane: u32,      // H*W (categorical) or h*w (gaussian)
  channels: u32,   // C (categorical) or L (gaussian)
  classes: u32,    // K (categorical); unused by gaussian
  position: u32,   // y*W + x of the position sampled by this pass
  channel: u32,    // colour channel sampled by this pass (categorical)
  floor: f32,      // sigma floor (gaussian)
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WORKGROUP_SIZE: u32 = 64u;

// ---- categorical ------------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> uniforms: array<f32>;
@group(0) @binding(3) var<storage, read_write> canvas: array<u32>;

@compute @workgroup_size(64)
fn categorical_at(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
  if (b >= p.batch) { return; }
  let inner = p.channel * p.plane + p.position;          // (c, y, x) inside one image
  let stride = p.channels * p.plane;                     // between classes
  let base = b * p.classes * stride + inner;
  var m = logits[base];
  for (var k = 1u; k < p.classes; k++) { m = max(m, logits[base + k * stride]); }
  var total = 0.0;
  for (var k = 0u; k < p.classes; k++) { total += exp(logits[base + k * stride] - m); }
  let goal = uniforms[b * stride + inner] * total;
  // The last class takes any remainder left by rounding (and a NaN row, so the canvas stays valid).
  var chosen = p.classes - 1u;
  var acc = 0.0;
  for (var k = 0u; k < p.classes; k++) {
    acc += exp(logits[base + k * stride] - m);
    if (acc > goal) {
      chosen = k;
      break;
    }
  }
  canvas[b * stride + inner] = chosen;
}

// ---- diagonal Gaussian --------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read> eps: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn softsign(x: f32) -> f32 {
  return x / (1.0 + abs(x));
}

@compute @workgroup_size(64)
fn gaussian_at(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
  if (t >= p.batch * p.channels) { return; }
  let b = t / p.channels;
  let l = t - b * p.channels;
  let rawMu = raw[(b * 2u * p.channels + l) * p.plane + p.position];
  let rawSigma = raw[(b * 2u * p.channels + p.channels + l) * p.plane + p.position];
  let mu = 2.0 * softsign(0.5 * rawMu);
  let s = 0.5 * (softsign(rawSigma) + 1.0);
  let sigma = select(max(s, p.floor), s, is_nan(s));
  let at = (b * p.channels + l) * p.plane + p.position;
  z[at] = mu + sigma * eps[at];
}
