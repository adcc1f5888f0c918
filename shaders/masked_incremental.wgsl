// Incremental autoregressive sampling for the hierarchical PixelVAE's two PixelCNNs
// (src/models/hierarchical/incremental.ts), after Ramachandran et al. 2017 ("Fast Generation for
// Convolutional Autoregressive Models"): every masked conv is computed only at the position being
// sampled, from per-layer caches of the rows it reads. A masked conv's output at raster position p
// reads its input at positions <= p only, and those are already in the caches.
//
// One entry, `sample_step`: one workgroup per G images, T threads per image. For each raster position of
// the dispatch (p.position .. p.position + p.steps - 1) and each colour (pixel level: R, G, B; latent
// level: one pass, a position's channels are drawn jointly) it runs the op list (one masked conv at
// the position per op, with barriers between ops), then draws in-kernel from the pre-drawn noise:
//   pixel level  the 256-way inverse-CDF draw of shaders/sample_categorical.wgsl's categorical_at;
//                the value goes to the canvas (u32) and its embedding into the input cache
//   latent level gaussian_at's mu + sigma * eps for every channel; z goes to the canvas (f32 bits)
//                and the input cache
// At colour c only the output channels of colour group c (channel mod groups) are computed: by the
// masks they read only channels of groups <= c at the position (and groups < c at the input conv),
// which earlier colours of the same position already computed, so the caches end each position
// holding exactly what the full network computes there.
//
// Float order: each output is summed as conv.wgsl's conv_forward sums it (input channel, then kernel
// rows above, the centre row left of the centre, the centre tap), then the bias, then the residual;
// ELU, sigmoid and tanh are elementwise.wgsl's. So the draws equal the full-recompute sampler's up to
// the compiler's contraction choices.
//
// Caches live in `st` (f32): a ring map holds the last `ring` rows of a layer's output, laid out
// [ring, N, chans, W] (row y in slot y % ring); a vector holds one position's values [N, chans]. A
// conv's source is a ring map for channels < split and the level's features (a full [N, F, H, W]
// map, fixed during sampling) for channels >= split: the networks concatenate the input conv's
// output before the features.
//
// `cst` (u32, read-only) holds the op table (OP_WORDS words per op), then the effective weights
// (weight norm applied; masked taps are never visited) and the embedding table, as f32 bits. An op:
//   0 flags: 1 ELU on the source (pre-activation), 2 gated (two convs: sigmoid(A) * tanh(B)),
//            4 the destination is a vector (else a ring map)
//   1 cin, 2 cout, 3 kernel size k (square, odd), 4 colour groups, 5 mask (1 A, 2 B)
//   6 source ring base, 7 source split (ring channels; the rest are features)
//   8 weight A [cout, cin, k, k], 9 bias A, 10 weight B, 11 bias B (gated only)
//   12 residual: 0 none, 1 identity (the residual source's channel co), 2 a 1x1 'B'-masked conv
//   13 residual weight [cout, rcin], 14 its bias, 15 residual source ring base, 16 its split, 17 rcin
//   18 destination base, 19 destination channels

struct Params {
  batch: u32, height: u32, width: u32, ring: u32,
  position: u32, steps: u32, ops: u32, colours: u32,
  feat: u32, input_base: u32, input_chans: u32, logits: u32,
  embed_dim: u32, embed_table: u32, floor: f32, _p0: u32,
}

/** Threads per image and images per workgroup. */
override T: u32 = 64u;
override G: u32 = 1u;
/** Pixel level (256-way draws per colour) or latent level (Gaussian draws). */
override PIXEL: bool = true;
/** Workgroup floats for the draw's exponentials: G * 256 at the pixel level. */
override EXPS: u32 = 256u;

const OP_WORDS: u32 = 20u;
const CLASSES: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cst: array<u32>;
@group(0) @binding(2) var<storage, read> noise: array<f32>;
@group(0) @binding(3) var<storage, read> feat: array<f32>;
@group(0) @binding(4) var<storage, read_write> canvas: array<u32>;
@group(0) @binding(5) var<storage, read_write> st: array<f32>;

var<workgroup> red: array<f32, G * T>;
var<workgroup> exps: array<f32, EXPS>;

fn wt(i: u32) -> f32 {
  return bitcast<f32>(cst[i]);
}

fn field(op: u32, f: u32) -> u32 {
  return cst[op * OP_WORDS + f];
}

// elementwise.wgsl's sigmoid, tanh and ELU, so the gate's values are the full network's.
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

fn safe_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -15.0, 15.0));
}

fn elu(x: f32) -> f32 {
  if (x > 0.0) { return x; }
  return exp(x) - 1.0;
}

fn softsign(x: f32) -> f32 {
  return x / (1.0 + abs(x));
}

/** Ring-map index of (channel c of `chans`, row y, column x) of image b. */
fn ring_at(base: u32, chans: u32, b: u32, c: u32, y: u32, x: u32) -> u32 {
  return base + (((y % p.ring) * p.batch + b) * chans + c) * p.width + x;
}

/** Channel ci of a conv's source at (y, x): the ring map below `split`, the features above. */
fn source(base: u32, split: u32, b: u32, ci: u32, y: u32, x: u32) -> f32 {
  if (ci < split) { return st[ring_at(base, split, b, ci, y, x)]; }
  return feat[((b * p.feat + ci - split) * p.height + y) * p.width + x];
}

fn centre_kept(mask: u32, groups: u32, ci: u32, co: u32) -> bool {
  let gi = ci % groups;
  let go = co % groups;
  return select(gi <= go, gi < go, mask == 1u);
}

/** Accumulators of one output channel (two for a gated op). */
struct Acc {
  a: f32,
  b: f32,
}

/** The masked k x k conv of op `op` at (y, x) for output channel co of image b, without bias. */
fn conv_at(op: u32, b: u32, co: u32, y: u32, x: u32) -> Acc {
  let flags = field(op, 0u);
  let act = (flags & 1u) != 0u;
  let gated = (flags & 2u) != 0u;
  let cin = field(op, 1u);
  let k = field(op, 3u);
  let groups = field(op, 4u);
  let mask = field(op, 5u);
  let base = field(op, 6u);
  let split = field(op, 7u);
  let c = k / 2u;
  let kk = k * k;
  let wa = field(op, 8u) + co * cin * kk;
  let wb = field(op, 10u) + co * cin * kk;
  var acc = Acc(0.0, 0.0);
  for (var ci = 0u; ci < cin; ci++) {
    let wci = ci * kk;
    // Rows above the centre, all columns (conv.wgsl's FULL_ROWS).
    for (var ky = 0u; ky < c; ky++) {
      let iy = i32(y) - i32(c) + i32(ky);
      if (iy < 0) { continue; }
      for (var kx = 0u; kx < k; kx++) {
        let ix = i32(x) - i32(c) + i32(kx);
        if (ix < 0 || ix >= i32(p.width)) { continue; }
        var v = source(base, split, b, ci, u32(iy), u32(ix));
        if (act) { v = elu(v); }
        let wk = wci + ky * k + kx;
        acc.a += wt(wa + wk) * v;
        if (gated) { acc.b += wt(wb + wk) * v; }
      }
    }
    // The centre row left of the centre.
    for (var kx = 0u; kx < c; kx++) {
      let ix = i32(x) - i32(c) + i32(kx);
      if (ix < 0) { continue; }
      var v = source(base, split, b, ci, y, u32(ix));
      if (act) { v = elu(v); }
      let wk = wci + c * k + kx;
      acc.a += wt(wa + wk) * v;
      if (gated) { acc.b += wt(wb + wk) * v; }
    }
    if (centre_kept(mask, groups, ci, co)) {
      var v = source(base, split, b, ci, y, x);
      if (act) { v = elu(v); }
      let wk = wci + c * k + c;
      acc.a += wt(wa + wk) * v;
      if (gated) { acc.b += wt(wb + wk) * v; }
    }
  }
  return acc;
}

/** Output channel co of op `op` at (y, x): conv, bias, gate, residual; stored in its destination. */
fn run_op(op: u32, b: u32, co: u32, y: u32, x: u32) {
  let flags = field(op, 0u);
  let acc = conv_at(op, b, co, y, x);
  var out = acc.a + wt(field(op, 9u) + co);
  if ((flags & 2u) != 0u) {
    out = sigmoid(out) * safe_tanh(acc.b + wt(field(op, 11u) + co));
  }
  let res = field(op, 12u);
  let rbase = field(op, 15u);
  let rsplit = field(op, 16u);
  if (res == 1u) {
    out = out + source(rbase, rsplit, b, co, y, x);
  } else if (res == 2u) {
    // The masked 1x1 shortcut at the position: a full conv's own sum and bias, then added.
    let rcin = field(op, 17u);
    let groups = field(op, 4u);
    let w = field(op, 13u) + co * rcin;
    var s = 0.0;
    for (var ci = 0u; ci < rcin; ci++) {
      if (centre_kept(2u, groups, ci, co)) { s += wt(w + ci) * source(rbase, rsplit, b, ci, y, x); }
    }
    out = out + (s + wt(field(op, 14u) + co));
  }
  let dst = field(op, 18u);
  let chans = field(op, 19u);
  if ((flags & 4u) != 0u) {
    st[dst + b * chans + co] = out;
  } else {
    st[ring_at(dst, chans, b, co, y, x)] = out;
  }
}

@compute @workgroup_size(G * T)
fn sample_step(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = lid.x / T;
  let j = lid.x % T;
  let b = wid.x * G + g;
  let live = b < p.batch;
  let plane = p.height * p.width;
  for (var s = 0u; s < p.steps; s++) {
    let pos = p.position + s;
    let y = pos / p.width;
    let x = pos % p.width;
    for (var colour = 0u; colour < p.colours; colour++) {
      for (var op = 0u; op < p.ops; op++) {
        if (live) {
          let cout = field(op, 2u);
          let groups = field(op, 4u);
          // The channels of this colour's group: colour, colour + groups, ... (all of them when groups = 1).
          let first = colour % groups;
          for (var co = first + j * groups; co < cout; co += T * groups) { run_op(op, b, co, y, x); }
        }
        storageBarrier();
      }
      if (PIXEL) {
        // categorical_at's inverse CDF over the 256 logits of this colour (channel v * C + colour).
        let at = p.logits + b * CLASSES * p.colours + colour;
        var m = 0.0;
        if (live) {
          m = st[at + j * p.colours];
          for (var v = j + T; v < CLASSES; v += T) { m = max(m, st[at + v * p.colours]); }
        }
        red[g * T + j] = m;
        workgroupBarrier();
        m = red[g * T];
        for (var i = 1u; i < T; i++) { m = max(m, red[g * T + i]); }
        if (live) {
          for (var v = j; v < CLASSES; v += T) { exps[g * CLASSES + v] = exp(st[at + v * p.colours] - m); }
        }
        workgroupBarrier();
        if (live && j == 0u) {
          var total = 0.0;
          for (var v = 0u; v < CLASSES; v++) { total += exps[g * CLASSES + v]; }
          let i = (b * p.colours + colour) * plane + pos;
          let goal = noise[i] * total;
          var chosen = CLASSES - 1u;
          var acc = 0.0;
          for (var v = 0u; v < CLASSES; v++) {
            acc += exps[g * CLASSES + v];
            if (acc > goal) {
              chosen = v;
              break;
            }
          }
          canvas[i] = chosen;
          // The embedding of the drawn value: input channels e * C + colour (model.ts's embed()).
          for (var e = 0u; e < p.embed_dim; e++) {
            st[ring_at(p.input_base, p.input_chans, b, e * p.colours + colour, y, x)] = wt(p.embed_table + chosen * p.embed_dim + e);
          }
        }
        storageBarrier();
      } else if (live) {
        // gaussian_at: mu = 2 softsign(raw_mu / 2), sigma = max((softsign(raw_sigma) + 1) / 2, floor).
        let l = p.input_chans;
        for (var c = j; c < l; c += T) {
          let raw_mu = st[p.logits + b * 2u * l + c];
          let raw_sigma = st[p.logits + b * 2u * l + l + c];
          let mu = 2.0 * softsign(0.5 * raw_mu);
          let sigma = max(0.5 * (softsign(raw_sigma) + 1.0), p.floor);
          let i = (b * l + c) * plane + pos;
          let z = mu + sigma * noise[i];
          canvas[i] = bitcast<u32>(z);
          st[ring_at(p.input_base, l, b, c, y, x)] = z;
        }
      }
      if (!PIXEL) { storageBarrier(); }
    }
  }
}
