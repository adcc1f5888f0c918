// Incremental autoregressive sampling for the MNIST PixelCNN decoders (src/models/incremental.ts),
// in the spirit of Ramachandran et al. 2017 ("Fast Generation for Convolutional Autoregressive
// Models"): every layer is computed only where the new pixel changes it, from per-layer caches kept
// in one state buffer. Four entries:
//   gated_row    once per image row and gated layer: the vertical stack's pre-activation row
//                (vpre, for padded row r = image rows r-c-1..r-1 of the layer's vertical input), its
//                gated output row r-1 (into the layer's ring of the last c+1 rows), and vpre into a
//                scratch row for gated_v2h
//   gated_v2h    once per row and gated layer: the 1x1 v2h conv of that vpre row (the horizontal
//                stack's row-shifted input)
//   gated_pixel  once per pixel: every layer's horizontal stack at the new pixel, the gated head and
//                the Bernoulli draw, one workgroup per G images, barriers between layers
//   masked_pixel once per pixel: the blind-spot PixelCNN, every layer at the new pixel from the rows
//                above (rings of the last c+1 rows per layer), the head and the draw
// The draw is the full sampler's rule (shaders/sample.wgsl): pixel = uniform < sigmoid(logit).
//
// Float order: every sum runs in the order of the generic kernels (conv_forward.wgsl: input channel, kernel
// row, kernel column; bias, then residual; the z term added before the gate), so the probabilities
// match the full-recompute sampler up to the compiler's contraction choices.
//
// `cst` (u32, read-only) holds a table of offsets, then the effective weights (weight norm applied;
// masks are applied by the loops, which never visit masked taps) and the z terms, as f32 bit
// patterns. Table: 16 words per layer l at l*16, then the head at p.head:
//   gated layer: 0 vconv w, 1 vconv b, 2 v2h w (as quads, below), 3 v2h b, 4 hconv w, 5 hconv b, 6 h2h w, 7 h2h b,
//                8 vstack z term [B, 2P] (or NONE), 9 hstack z term, 10 input channels, 11 kernel size,
//                12 state offset of the vertical ring [R, B, P, W], 13 of the horizontal row [B, P, W],
//                14 of the v2h row [B, 2P, W], 15 vconv w as quads
//   (quads: [ceil(CO/4), CI, KH, KW, 4], read through cst4, one vec4 = one tap of 4 output channels)
//   masked layer: 0 w, 1 b, 10 input channels, 11 kernel size, 12 state offset of the ring [R, B, P, W]
//   head: 0 out1 w, 1 out1 b, 2 out2 w, 3 out2 b, 4 out3 w, 5 out3 b, 6 out1 z term, 7 out2 z term

struct Params {
  batch: u32, height: u32, width: u32, layers: u32,
  row: u32, col: u32, layer: u32, ring: u32,
  feat: u32, head: u32, vpre: u32, threads: u32,
  cblocks: u32, xblocks: u32, _p0: u32, _p1: u32,
}

/** Stack width P. */
override P: u32 = 16u;
/** Head width (2*OW pre-gate channels in the gated head). */
override OW: u32 = 16u;
/** Threads per image in the pixel entries (>= max(P, OW)) and images per workgroup. */
override T: u32 = 16u;
override G: u32 = 4u;
/** Workgroup memory per workgroup: G * max(P, OW). */
override WGMEM: u32 = 64u;
/** Kernel size of the layer gated_row computes (a variant per size: loops over it unroll). */
override KR: u32 = 5u;
/** z enters every gate (gated-pixelvae-cond). */
override COND: bool = false;

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cst: array<u32>;
@group(0) @binding(2) var<storage, read> uni: array<f32>;
@group(0) @binding(3) var<storage, read> feat: array<f32>;
@group(0) @binding(4) var<storage, read_write> canvas: array<f32>;
@group(0) @binding(5) var<storage, read_write> probs: array<f32>;
@group(0) @binding(6) var<storage, read_write> st: array<f32>;
/** cst again, as vec4 (pieces are 4-word aligned): one bounds-checked load for 4 weights. */
@group(0) @binding(7) var<storage, read> cst4: array<vec4<f32>>;

fn wt(i: u32) -> f32 {
  return bitcast<f32>(cst[i]);
}

fn tab(l: u32, f: u32) -> u32 {
  return cst[l * 16u + f];
}

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
fn is_nan4(x: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

fn safe_tanh(x: f32) -> f32 {
  return select(tanh(clamp(x, -15.0, 15.0)), x, is_nan(x));
}

fn relu(x: f32) -> f32 {
  return select(max(x, 0.0), x, is_nan(x));
}

// conv_common.wgsl's sigmoid4 for one lane (the gate).
fn gate_sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

fn safe_tanh4(x: vec4<f32>) -> vec4<f32> {
  return select(tanh(clamp(x, vec4<f32>(-15.0), vec4<f32>(15.0))), x, is_nan4(x));
}

fn sigmoid4(x: vec4<f32>) -> vec4<f32> {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= vec4<f32>(0.0));
}

// sample.wgsl's sigmoid (the probability of the draw).
fn prob_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

/** Channel ci of the first layer's input [image, features...] at (y, x) of image b. */
fn input_at(b: u32, ci: u32, y: u32, x: u32) -> f32 {
  if (ci == 0u) { return canvas[(b * p.height + y) * p.width + x]; }
  return feat[((b * p.feat + ci - 1u) * p.height + y) * p.width + x];
}

/** Value at (row q, column ix) of channel ci of layer l's input (zero outside the columns). */
fn layer_input(l: u32, b: u32, ci: u32, q: u32, ix: i32) -> f32 {
  if (ix < 0 || ix >= i32(p.width)) { return 0.0; }
  let x = u32(ix);
  if (l == 0u) { return input_at(b, ci, q, x); }
  let slot = q % p.ring;
  return st[tab(l - 1u, 12u) + ((slot * p.batch + b) * P + ci) * p.width + x];
}

fn zterm(off: u32, b: u32, width: u32, c: u32) -> f32 {
  return wt(off + b * width + c);
}

// ---- gated: once per row ------------------------------------------------------------------------
// A thread owns 4 pre-gate channels (two gate pairs) x 4 columns of one image, as conv_forward.wgsl; grid
// [images x column blocks (x, y), channel blocks (z)].

@compute @workgroup_size(64)
fn gated_row(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // The channel block is the workgroup's z, so every weight address is uniform: lavapipe loads it once
  // for the SIMD lanes instead of a bounds-checked gather per lane.
  let cb = wid.z;
  let t = gid.x + gid.y * nwg.x * 64u;
  if (t >= p.threads) { return; }
  let xb = t % p.xblocks;
  let b = t / p.xblocks;
  let l = p.layer;
  let cin = tab(l, 10u);
  let c2 = 2u * P;
  let last = c2 - 1u;
  let co0 = cb * 4u;
  // This thread's 4 output channels' weights, one vec4 per tap (padded channels are zero, never stored).
  let wq = tab(l, 15u) / 4u + cb * cin * KR * KR;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  let x0 = xb * 4u;
  let r = i32(p.row);
  let ix0 = i32(x0) - i32(KR / 2u);
  let ring_base = select(0u, tab(max(l, 1u) - 1u, 12u), l > 0u);
  for (var ci = 0u; ci < cin; ci++) {
    let wci = ci * KR * KR;
    for (var ky = 0u; ky <= KR / 2u; ky++) {
      // Padded row r of the vstack conv reads padded rows r-c..r = image rows r-c-1..r-1.
      let q = r - i32(KR / 2u) + i32(ky) - 1;
      if (q < 0) { continue; }
      // The KR + 3 input columns this thread's 4 outputs read, loaded once (zero outside the image).
      var row_base: u32;
      if (l > 0u) {
        row_base = ring_base + (((u32(q) % p.ring) * p.batch + b) * P + ci) * p.width;
      } else if (ci == 0u) {
        row_base = (b * p.height + u32(q)) * p.width;
      } else {
        row_base = ((b * p.feat + ci - 1u) * p.height + u32(q)) * p.width;
      }
      var win: array<f32, 10>;
      for (var i = 0u; i < KR + 3u; i++) {
        let ix = ix0 + i32(i);
        var v = 0.0;
        if (ix >= 0 && ix < i32(p.width)) {
          let at = row_base + u32(ix);
          if (l > 0u) { v = st[at]; } else if (ci == 0u) { v = canvas[at]; } else { v = feat[at]; }
        }
        win[i] = v;
      }
      for (var kx = 0u; kx < KR; kx++) {
        let xv = vec4<f32>(win[kx], win[kx + 1u], win[kx + 2u], win[kx + 3u]);
        let w = cst4[wq + wci + ky * KR + kx];
        a0 += w.x * xv;
        a1 += w.y * xv;
        a2 += w.z * xv;
        a3 += w.w * xv;
      }
    }
  }
  let vb = tab(l, 1u);
  let v0 = a0 + wt(vb + co0);
  let v1 = a1 + wt(vb + min(co0 + 1u, last));
  let v2 = a2 + wt(vb + min(co0 + 2u, last));
  let v3 = a3 + wt(vb + min(co0 + 3u, last));
  let lanes = min(4u, p.width - x0);
  let pair1 = co0 + 2u < c2;
  let sbase = p.vpre + (b * c2 + co0) * p.width + x0;
  for (var j = 0u; j < lanes; j++) {
    st[sbase + j] = v0[j];
    st[sbase + p.width + j] = v1[j];
    if (pair1) {
      st[sbase + 2u * p.width + j] = v2[j];
      st[sbase + 3u * p.width + j] = v3[j];
    }
  }
  // The gated vertical output of image row r-1, for the next layer (the last layer's is unused).
  if (l + 1u < p.layers && p.row >= 1u) {
    var t0 = v0;
    var s0 = v1;
    var t1 = v2;
    var s1 = v3;
    if (COND) {
      let zo = tab(l, 8u);
      t0 = t0 + zterm(zo, b, c2, co0);
      s0 = s0 + zterm(zo, b, c2, co0 + 1u);
      t1 = t1 + zterm(zo, b, c2, min(co0 + 2u, last));
      s1 = s1 + zterm(zo, b, c2, min(co0 + 3u, last));
    }
    let g0 = safe_tanh4(t0) * sigmoid4(s0);
    let g1 = safe_tanh4(t1) * sigmoid4(s1);
    let slot = (p.row - 1u) % p.ring;
    let obase = tab(l, 12u) + ((slot * p.batch + b) * P + co0 / 2u) * p.width + x0;
    for (var j = 0u; j < lanes; j++) {
      st[obase + j] = g0[j];
      if (pair1) { st[obase + p.width + j] = g1[j]; }
    }
  }
}

fn vpre_at(b: u32, ci: u32, ix: u32) -> f32 {
  if (ix >= p.width) { return 0.0; }
  return st[p.vpre + (b * 2u * P + ci) * p.width + ix];
}

@compute @workgroup_size(64)
fn gated_v2h(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // The channel block is the workgroup's z, so every weight address is uniform: lavapipe loads it once
  // for the SIMD lanes instead of a bounds-checked gather per lane.
  let cb = wid.z;
  let t = gid.x + gid.y * nwg.x * 64u;
  if (t >= p.threads) { return; }
  let xb = t % p.xblocks;
  let b = t / p.xblocks;
  let l = p.layer;
  let c2 = 2u * P;
  let last = c2 - 1u;
  let co0 = cb * 4u;
  let wq = tab(l, 2u) / 4u + cb * c2;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  let x0 = xb * 4u;
  for (var ci = 0u; ci < c2; ci++) {
    let xv = vec4<f32>(vpre_at(b, ci, x0), vpre_at(b, ci, x0 + 1u), vpre_at(b, ci, x0 + 2u), vpre_at(b, ci, x0 + 3u));
    let w = cst4[wq + ci];
    a0 += w.x * xv;
    a1 += w.y * xv;
    a2 += w.z * xv;
    a3 += w.w * xv;
  }
  let vb = tab(l, 3u);
  let v0 = a0 + wt(vb + co0);
  let v1 = a1 + wt(vb + min(co0 + 1u, last));
  let v2 = a2 + wt(vb + min(co0 + 2u, last));
  let v3 = a3 + wt(vb + min(co0 + 3u, last));
  let lanes = min(4u, p.width - x0);
  let base = tab(l, 14u) + (b * c2 + co0) * p.width + x0;
  for (var j = 0u; j < lanes; j++) {
    st[base + j] = v0[j];
    if (co0 + 1u < c2) { st[base + p.width + j] = v1[j]; }
    if (co0 + 2u < c2) { st[base + 2u * p.width + j] = v2[j]; }
    if (co0 + 3u < c2) { st[base + 3u * p.width + j] = v3[j]; }
  }
}

// ---- once per pixel ---------------------------------------------------------------------------------
// Workgroup: G images x T threads; thread j of an image owns gate pair j (gated) or channel j (masked).

var<workgroup> cur: array<f32, WGMEM>;
var<workgroup> gsh: array<f32, WGMEM>;
var<workgroup> gsh2: array<f32, WGMEM>;

/** The Bernoulli draw at the pixel, as sample.wgsl. */
fn draw(b: u32, logit: f32) {
  let i = b * p.height * p.width + p.row * p.width + p.col;
  let prob = prob_sigmoid(logit);
  probs[i] = prob;
  canvas[i] = select(0.0, 1.0, uni[i] < prob);
}

@compute @workgroup_size(G * T)
fn gated_pixel(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = lid.x / T;
  let j = lid.x % T;
  let b = wid.x * G + g;
  let live = b < p.batch;
  let cw = max(P, OW);
  let me = g * cw;
  let x = p.col;
  let c2 = 2u * P;
  // The layer's input at the pixel alternates between cur (even layers read it) and gsh2 (odd), so a
  // layer needs two barriers: after the gate, and after its output.
  for (var l = 0u; l < p.layers; l++) {
    let odd = (l & 1u) == 1u;
    if (live && j < P) {
      let cin = tab(l, 10u);
      let k = tab(l, 11u);
      let c = k / 2u;
      // Horizontal stack, 1 x k: columns x-c..x-1 of this row (mask A in layer 0), and the centre.
      let co0 = 2u * j;
      let fs = cin * k;
      let w0 = tab(l, 4u) + co0 * fs;
      let w1 = w0 + fs;
      var a0 = 0.0;
      var a1 = 0.0;
      let first = c - min(x, c);
      if (l == 0u) {
        for (var ci = 0u; ci < cin; ci++) {
          for (var kx = first; kx < c; kx++) {
            let v = input_at(b, ci, p.row, x + kx - c);
            a0 += wt(w0 + ci * k + kx) * v;
            a1 += wt(w1 + ci * k + kx) * v;
          }
        }
      } else {
        let prev = tab(l - 1u, 13u) + b * P * p.width + x - c;
        for (var ci = 0u; ci < cin; ci++) {
          let wr0 = w0 + ci * k;
          let wr1 = w1 + ci * k;
          let row = prev + ci * p.width;
          for (var kx = first; kx < c; kx++) {
            let v = st[row + kx];
            a0 += wt(wr0 + kx) * v;
            a1 += wt(wr1 + kx) * v;
          }
          var v: f32;
          if (odd) { v = cur[me + ci]; } else { v = gsh2[me + ci]; }
          a0 += wt(wr0 + c) * v;
          a1 += wt(wr1 + c) * v;
        }
      }
      let hb = tab(l, 5u);
      let vh = tab(l, 14u) + (b * c2 + co0) * p.width + x;
      var t0 = (a0 + wt(hb + co0)) + st[vh];
      var s0 = (a1 + wt(hb + co0 + 1u)) + st[vh + p.width];
      if (COND) {
        let zo = tab(l, 9u);
        t0 = t0 + zterm(zo, b, c2, co0);
        s0 = s0 + zterm(zo, b, c2, co0 + 1u);
      }
      gsh[me + j] = safe_tanh(t0) * gate_sigmoid(s0);
    }
    workgroupBarrier();
    if (live && j < P) {
      // h2h (1x1, P -> P) on the gated values, + bias, + the residual (the layer's input at x).
      let w = tab(l, 6u) + j * P;
      var a = 0.0;
      for (var ci = 0u; ci < P; ci++) { a += wt(w + ci) * gsh[me + ci]; }
      var out = a + wt(tab(l, 7u) + j);
      if (odd) {
        out = out + cur[me + j];
        gsh2[me + j] = out;
      } else {
        if (l > 0u) { out = out + gsh2[me + j]; }
        cur[me + j] = out;
      }
      if (l + 1u < p.layers) { st[tab(l, 13u) + (b * P + j) * p.width + x] = out; }
    }
    workgroupBarrier();
  }
  if ((p.layers & 1u) == 0u) {
    // The last layer's output is in gsh2: move it to cur for the head.
    if (live && j < P) { cur[me + j] = gsh2[me + j]; }
    workgroupBarrier();
  }
  // Head: two gated 1x1 layers (P -> 2 OW, OW -> 2 OW), then a 1x1 conv to the logit.
  let hd = p.head;
  let o2 = 2u * OW;
  if (live && j < OW) {
    let w0 = cst[hd] + 2u * j * P;
    let w1 = w0 + P;
    var a0 = 0.0;
    var a1 = 0.0;
    for (var ci = 0u; ci < P; ci++) {
      let v = cur[me + ci];
      a0 += wt(w0 + ci) * v;
      a1 += wt(w1 + ci) * v;
    }
    var t0 = a0 + wt(cst[hd + 1u] + 2u * j);
    var s0 = a1 + wt(cst[hd + 1u] + 2u * j + 1u);
    if (COND) {
      t0 = t0 + zterm(cst[hd + 6u], b, o2, 2u * j);
      s0 = s0 + zterm(cst[hd + 6u], b, o2, 2u * j + 1u);
    }
    gsh[me + j] = safe_tanh(t0) * gate_sigmoid(s0);
  }
  workgroupBarrier();
  if (live && j < OW) {
    let w0 = cst[hd + 2u] + 2u * j * OW;
    let w1 = w0 + OW;
    var a0 = 0.0;
    var a1 = 0.0;
    for (var ci = 0u; ci < OW; ci++) {
      let v = gsh[me + ci];
      a0 += wt(w0 + ci) * v;
      a1 += wt(w1 + ci) * v;
    }
    var t0 = a0 + wt(cst[hd + 3u] + 2u * j);
    var s0 = a1 + wt(cst[hd + 3u] + 2u * j + 1u);
    if (COND) {
      t0 = t0 + zterm(cst[hd + 7u], b, o2, 2u * j);
      s0 = s0 + zterm(cst[hd + 7u], b, o2, 2u * j + 1u);
    }
    cur[me + j] = safe_tanh(t0) * gate_sigmoid(s0);
  }
  workgroupBarrier();
  if (live && j == 0u) {
    let w = cst[hd + 4u];
    var a = 0.0;
    for (var ci = 0u; ci < OW; ci++) { a += wt(w + ci) * cur[me + ci]; }
    draw(b, a + wt(cst[hd + 5u]));
  }
}

@compute @workgroup_size(G * T)
fn masked_pixel(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = lid.x / T;
  let j = lid.x % T;
  let b = wid.x * G + g;
  let live = b < p.batch;
  let cw = max(P, OW);
  let me = g * cw;
  let x = p.col;
  let r = p.row;
  for (var l = 0u; l < p.layers; l++) {
    let cin = tab(l, 10u);
    let k = tab(l, 11u);
    let c = k / 2u;
    var out = 0.0;
    if (live && j < P) {
      // k x k, mask A (layer 0) or B: rows r-c..r-1 in full, then row r up to column x (B: the centre).
      let w = tab(l, 0u) + j * cin * k * k;
      var a = 0.0;
      for (var ci = 0u; ci < cin; ci++) {
        let wci = w + ci * k * k;
        for (var ky = 0u; ky < c; ky++) {
          let q = i32(r) - i32(c) + i32(ky);
          if (q < 0) { continue; }
          for (var kx = 0u; kx < k; kx++) {
            let ix = i32(x) - i32(c) + i32(kx);
            if (ix < 0 || ix >= i32(p.width)) { continue; }
            a += wt(wci + ky * k + kx) * layer_input(l, b, ci, u32(q), ix);
          }
        }
        for (var kx = 0u; kx < c; kx++) {
          let ix = i32(x) - i32(c) + i32(kx);
          if (ix < 0) { continue; }
          a += wt(wci + c * k + kx) * layer_input(l, b, ci, r, ix);
        }
        if (l > 0u) { a += wt(wci + c * k + c) * cur[me + ci]; }
      }
      let pre = a + wt(tab(l, 1u) + j);
      if (l == 0u) {
        out = relu(pre);
      } else {
        out = cur[me + j] + relu(pre);
      }
    }
    workgroupBarrier();
    if (live && j < P) {
      cur[me + j] = out;
      if (l + 1u < p.layers) { st[tab(l, 12u) + (((r % p.ring) * p.batch + b) * P + j) * p.width + x] = out; }
    }
    workgroupBarrier();
  }
  // Head: relu(1x1 P -> OW), relu(1x1 OW -> OW), 1x1 OW -> 1.
  let hd = p.head;
  if (live && j < OW) {
    let w = cst[hd] + j * P;
    var a = 0.0;
    for (var ci = 0u; ci < P; ci++) { a += wt(w + ci) * cur[me + ci]; }
    gsh[me + j] = relu(a + wt(cst[hd + 1u] + j));
  }
  workgroupBarrier();
  if (live && j < OW) {
    let w = cst[hd + 2u] + j * OW;
    var a = 0.0;
    for (var ci = 0u; ci < OW; ci++) { a += wt(w + ci) * gsh[me + ci]; }
    cur[me + j] = relu(a + wt(cst[hd + 3u] + j));
  }
  workgroupBarrier();
  if (live && j == 0u) {
    let w = cst[hd + 4u];
    var a = 0.0;
    for (var ci = 0u; ci < OW; ci++) { a += wt(w + ci) * cur[me + ci]; }
    draw(b, a + wt(cst[hd + 5u]));
  }
}
