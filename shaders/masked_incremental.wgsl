// Incremental autoregressive sampling for the hierarchical PixelVAE's two PixelCNNs
// (src/models/hierarchical/incremental.ts), after Ramachandran et al. 2017 ("Fast Generation for
// Convolutional Autoregressive Models"): every masked conv is computed only at the position being
// sampled, from caches of the rows it reads. A masked conv's output at raster position p reads its
// input at positions <= p only, and those are already in the caches.
//
// One entry, `sample_step`. A workgroup holds IB * TI images. For each raster position of the
// dispatch (p.position .. p.position + p.steps - 1) and each colour (pixel level: R, G, B; latent
// level: one pass, a position's channels are drawn jointly) it runs the op list, one masked conv at
// the position per op with a barrier after each, then draws in-kernel from the pre-drawn noise:
//   pixel level  the 256-way inverse-CDF draw of shaders/sample_categorical.wgsl's categorical_at;
//                the value goes to the canvas (u32) and its embedding into the input cache
//   latent level gaussian_at's mu + sigma * eps for every channel; z goes to the canvas (f32 bits)
//                and the input cache
// At colour c only the output channels of colour group c (channel mod groups) are computed: by the
// masks they read only channels of groups <= c at the position (groups < c at the input conv),
// which earlier colours of the same position already computed, so the caches end each position
// holding exactly what the full network computes there.
//
// Work item: 4 output channels of the colour's group for IB images, so each weight load (a vec4:
// the weights are regrouped by block) serves 4 channels x IB images; on a CPU adapter loads, not
// multiply-adds, bound this kernel.
//
// Float order: each output is summed as conv_forward.wgsl's conv_forward sums it (input channel, then kernel
// rows above, the centre row left of the centre, the centre tap), then the bias, then the residual;
// ELU, sigmoid and tanh are elementwise.wgsl's. So the draws equal the full-recompute sampler's up to
// the compiler's contraction choices (on lavapipe, bit for bit).
//
// All maps live in `st` (f32): a ring map holds the last `ring` rows of a layer's output, laid out
// [ring, N, chans, W] (row y in slot y % ring); a vector holds one position's values [N, chans]; the
// level's features are full [N, F, H, W] maps, raw and ELU'd. A conv's source is a ring map for
// channels < split and the features for the rest (the networks concatenate the input conv's output
// before the features). The gated convs read ELU'd maps (their pre-activation): the op that writes
// a map also writes its ELU, so no exp runs inside the conv loops.
//
// `cst` (u32, read-only; also bound as `cst4`) holds the op table (OP_WORDS words per op), then the
// weights and biases (weight norm applied; regrouped [blocks, taps, 4]: block b holds the 4
// channels of work item b, the colour groups' blocks one after another; masked taps are never
// visited) and the embedding table, as f32 bits, each at a multiple of 4 words. An op:
//   0 flags: 2 gated (two convs: sigmoid(A) * tanh(B)), 4 the destination is a vector (else a ring map)
//   1 cin, 2 cout, 3 kernel size k (square, odd), 4 colour groups, 5 mask (1 A, 2 B)
//   6 source ring base, 7 source split (ring channels; the rest are features)
//   8 weight A, 9 bias A, 10 weight B, 11 bias B (gated only)
//   12 residual: 0 none, 1 identity (the residual source's channel co), 2 a 1x1 'B'-masked conv
//   13 residual weight, 14 its bias, 15 residual source ring base, 16 its split, 17 its channels
//   18 destination base, 19 destination channels, 20 the source's features (raw or ELU'd),
//   21 the destination's ELU map (or NONE)

struct Params {
  batch: u32, height: u32, width: u32, ring: u32,
  position: u32, steps: u32, ops: u32, colours: u32,
  feat: u32, feat_base: u32, input_base: u32, input_chans: u32,
  logits: u32, exps: u32, embed_dim: u32, embed_table: u32,
  floor: f32, _p0: u32, _p1: u32, _p2: u32,
}

/** Threads per workgroup. */
override T: u32 = 64u;
/** Images per work item: a thread computes its 4 channels for IB images (each weight loaded once for them). */
override IB: u32 = 1u;
/** Image blocks per workgroup (the workgroup's images: IB * TI). */
override TI: u32 = 1u;
/** Pixel level (256-way draws per colour) or latent level (Gaussian draws). */
override PIXEL: bool = true;

const OP_WORDS: u32 = 24u;
const NONE: u32 = 0xffffffffu;
/** Largest IB (private arrays need a constant size). */
const IB_MAX: u32 = 4u;
const CLASSES: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cst: array<u32>;
@group(0) @binding(2) var<storage, read> noise: array<f32>;
@group(0) @binding(3) var<storage, read_write> canvas: array<u32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;
/** The same buffer as cst, as vec4s: the weights of a work item's 4 channels at one tap. */
@group(0) @binding(5) var<storage, read> cst4: array<vec4<u32>>;

/** Each image's largest logit of the colour being drawn. */
var<workgroup> wmax: array<f32, IB * TI>;

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

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn safe_tanh(x: f32) -> f32 {
  return select(tanh(clamp(x, -15.0, 15.0)), x, is_nan(x));
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
  return st[p.feat_base + ((b * p.feat + ci - split) * p.height + y) * p.width + x];
}

/** Tap t of work-item block `blk` of the packed (block, tap, 4 channels) tensor at word `at`. */
fn weights(at: u32, rest: u32, blk: u32, t: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(cst4[at / 4u + blk * rest + t]);
}

/** Channels g, g + groups, ... below cout: how many. */
fn group_count(cout: u32, groups: u32, g: u32) -> u32 {
  return select(0u, (cout - g + groups - 1u) / groups, g < cout);
}

/** The block index of work item q (channels 4q.. of colour group go): earlier groups' blocks come first. */
fn block_of(cout: u32, groups: u32, go: u32, q: u32) -> u32 {
  var blk = q;
  for (var g = 0u; g < go; g++) { blk += (group_count(cout, groups, g) + 3u) / 4u; }
  return blk;
}

var<private> acc_a: array<vec4<f32>, IB_MAX>;
var<private> acc_b: array<vec4<f32>, IB_MAX>;

/**
 * The masked k x k conv of op `op` at (y, x) into acc_a (and acc_b), without bias, for channels
 * `co` (all of colour group `go`, so one centre mask for the four) of the IB images from b0.
 * Sums run in conv_forward.wgsl's order: input channel, rows above, the centre row left of the centre, the
 * centre tap. The source has two segments, each a map with its own strides: the ring map (channels
 * < split; rows wrap at p.ring) and the features (a full map; rows never wrap).
 */
fn conv_at(op: u32, b0: u32, blk: u32, go: u32, y: u32, x: u32) {
  let flags = field(op, 0u);
  let gated = (flags & 2u) != 0u;
  let cin = field(op, 1u);
  let k = field(op, 3u);
  let groups = field(op, 4u);
  let a_mask = field(op, 5u) == 1u;
  let split = field(op, 7u);
  let c = k / 2u;
  let kk = k * k;
  let wa = field(op, 8u);
  let wb = field(op, 10u);
  let rest = cin * kk;
  var imgs: array<u32, IB_MAX>;
  for (var i = 0u; i < IB; i++) {
    imgs[i] = min(b0 + i, p.batch - 1u);
    acc_a[i] = vec4<f32>(0.0);
    acc_b[i] = vec4<f32>(0.0);
  }
  // Kernel rows above the centre inside the image: ky0..c-1; columns kx0..kx1-1.
  let ky0 = c - min(y, c);
  let kx0 = c - min(x, c);
  let kx1 = min(k, p.width + c - x);
  var gi = 0u;
  for (var seg = 0u; seg < 2u; seg++) {
    let ring = seg == 0u;
    let first = select(split, 0u, ring);
    let end = select(cin, split, ring);
    // Strides of the segment's map: image, channel, row; rows wrap at `wrap`.
    let img = select(p.feat * p.height * p.width, split * p.width, ring);
    let chan = select(p.height * p.width, p.width, ring);
    let rowstride = select(p.width, p.batch * split * p.width, ring);
    let wrap = select(p.height, p.ring, ring);
    let slot0 = select(y + ky0 - c, (y + ky0 - c) % p.ring, ring);
    let base = select(field(op, 20u), field(op, 6u), ring) + x - c;
    var offs: array<u32, IB_MAX>;
    for (var i = 0u; i < IB; i++) { offs[i] = base + imgs[i] * img; }
    for (var ci = first; ci < end; ci++) {
      let wci = ci * kk;
      let cbase = (ci - first) * chan;
      var slot = slot0;
      for (var ky = ky0; ky <= c; ky++) {
        // The centre row stops left of the centre, or takes the centre tap when the mask keeps it.
        let centre = ky == c;
        let keep = select(gi <= go, gi < go, a_mask);
        let kend = select(kx1, select(c, c + 1u, keep), centre);
        let row = cbase + slot * rowstride;
        for (var kx = kx0; kx < kend; kx++) {
          let t = wci + ky * k + kx;
          let w = weights(wa, rest, blk, t);
          var w2 = vec4<f32>(0.0);
          if (gated) { w2 = weights(wb, rest, blk, t); }
          for (var i = 0u; i < IB; i++) {
            let v = st[offs[i] + row + kx];
            acc_a[i] += w * v;
            if (gated) { acc_b[i] += w2 * v; }
          }
        }
        slot = select(slot + 1u, 0u, slot + 1u == wrap);
      }
      gi = select(gi + 1u, 0u, gi + 1u == groups);
    }
  }
}

/** Channels co (lanes < lanes live) of op `op` at (y, x): conv, bias, gate, residual; stored in its destination. */
fn run_op(op: u32, b0: u32, co: vec4<u32>, blk: u32, lanes: u32, go: u32, y: u32, x: u32) {
  let flags = field(op, 0u);
  conv_at(op, b0, blk, go, y, x);
  let bias_a = weights(field(op, 9u), 1u, blk, 0u);
  var bias_b = vec4<f32>(0.0);
  if ((flags & 2u) != 0u) { bias_b = weights(field(op, 11u), 1u, blk, 0u); }
  let res = field(op, 12u);
  let rbase = field(op, 15u);
  let rsplit = field(op, 16u);
  let rcin = field(op, 17u);
  let groups = field(op, 4u);
  let rw = field(op, 13u);
  let dst = field(op, 18u);
  let chans = field(op, 19u);
  for (var i = 0u; i < IB; i++) {
    let b = b0 + i;
    if (b >= p.batch) { break; }
    var out = acc_a[i] + bias_a;
    if ((flags & 2u) != 0u) {
      let pre_b = acc_b[i] + bias_b;
      for (var l = 0u; l < 4u; l++) { out[l] = sigmoid(out[l]) * safe_tanh(pre_b[l]); }
    }
    if (res == 1u) {
      for (var l = 0u; l < lanes; l++) { out[l] = out[l] + source(rbase, rsplit, b, co[l], y, x); }
    } else if (res == 2u) {
      // The masked 1x1 shortcut at the position: a full conv's own sum and bias, then added.
      var s = vec4<f32>(0.0);
      var gi = 0u;
      for (var ci = 0u; ci < rcin; ci++) {
        if (gi <= go) { s += weights(rw, rcin, blk, ci) * source(rbase, rsplit, b, ci, y, x); }
        gi = select(gi + 1u, 0u, gi + 1u == groups);
      }
      out = out + (s + weights(field(op, 14u), 1u, blk, 0u));
    }
    let dst_elu = field(op, 21u);
    for (var l = 0u; l < lanes; l++) {
      if ((flags & 4u) != 0u) {
        st[dst + b * chans + co[l]] = out[l];
      } else {
        st[ring_at(dst, chans, b, co[l], y, x)] = out[l];
        if (dst_elu != NONE) { st[ring_at(dst_elu, chans, b, co[l], y, x)] = elu(out[l]); }
      }
    }
  }
}

@compute @workgroup_size(T)
fn sample_step(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let j = lid.x;
  let images = IB * TI;
  let first_image = wid.x * images;
  let plane = p.height * p.width;
  for (var s = 0u; s < p.steps; s++) {
    let pos = p.position + s;
    let y = pos / p.width;
    let x = pos % p.width;
    for (var colour = 0u; colour < p.colours; colour++) {
      for (var op = 0u; op < p.ops; op++) {
        let cout = field(op, 2u);
        let groups = field(op, 4u);
        // The channels of this colour's group are go, go + groups, ... (all of them when groups = 1).
        // A work item is 4 of them (clamped to a live one) for one block of IB images.
        let go = colour % groups;
        let count = group_count(cout, groups, go);
        let items = (count + 3u) / 4u * TI;
        for (var item = j; item < items; item += T) {
          let q = item / TI * 4u;
          let b0 = first_image + item % TI * IB;
          let lanes = min(4u, count - q);
          let last = count - 1u;
          let co = go + groups * vec4<u32>(q, min(q + 1u, last), min(q + 2u, last), min(q + 3u, last));
          if (b0 < p.batch) { run_op(op, b0, co, block_of(cout, groups, go, q / 4u), lanes, go, y, x); }
        }
        storageBarrier();
      }
      if (PIXEL) {
        // categorical_at's inverse CDF over the 256 logits of this colour (channel v * C + colour):
        // the largest logit, every class's exp(logit - max) in parallel, then one thread per image
        // sums and scans them in categorical_at's order.
        if (j < images) {
          let b = min(first_image + j, p.batch - 1u);
          let at = p.logits + b * CLASSES * p.colours + colour;
          var m = st[at];
          for (var v = 1u; v < CLASSES; v++) { m = max(m, st[at + v * p.colours]); }
          wmax[j] = m;
        }
        workgroupBarrier();
        for (var item = j; item < images * CLASSES; item += T) {
          let i = item / CLASSES;
          let v = item % CLASSES;
          let b = min(first_image + i, p.batch - 1u);
          st[p.exps + b * CLASSES + v] = exp(st[p.logits + (b * CLASSES + v) * p.colours + colour] - wmax[i]);
        }
        storageBarrier();
        let b = first_image + j;
        if (j < images && b < p.batch) {
          let e0 = p.exps + b * CLASSES;
          var total = 0.0;
          for (var v = 0u; v < CLASSES; v++) { total += st[e0 + v]; }
          let i = (b * p.colours + colour) * plane + pos;
          let goal = noise[i] * total;
          var chosen = CLASSES - 1u;
          var acc = 0.0;
          for (var v = 0u; v < CLASSES; v++) {
            acc += st[e0 + v];
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
      } else {
        // gaussian_at: mu = 2 softsign(raw_mu / 2), sigma = max((softsign(raw_sigma) + 1) / 2, floor).
        let l = p.input_chans;
        for (var item = j; item < images * l; item += T) {
          let b = first_image + item / l;
          let c = item % l;
          if (b < p.batch) {
            let raw_mu = st[p.logits + b * 2u * l + c];
            let raw_sigma = st[p.logits + b * 2u * l + l + c];
            let mu = 2.0 * softsign(0.5 * raw_mu);
            let s = 0.5 * (softsign(raw_sigma) + 1.0);
            let sigma = select(max(s, p.floor), s, is_nan(s));
            let at = (b * l + c) * plane + pos;
            let z = mu + sigma * noise[at];
            canvas[at] = bitcast<u32>(z);
            st[ring_at(p.input_base, l, b, c, y, x)] = z;
          }
        }
      }
      storageBarrier();
    }
  }
}
