// Convolutions, NCHW f32, weights [Cout, Cin, KH, KW] (cross-correlation). One family, three entries:
//   conv_forward          y = x (*) w, with masks, stride, padding and a fused epilogue
//                         (+bias, +pre-residual, +per-(image, channel) cond, gated activation over
//                         interleaved channels, +residual)
//   conv_backward_data    d = g (*)^T w: the transposed convolution (gathers over output positions;
//                         stride 2 by the divisibility test). Also convTranspose2d's forward.
//   conv_backward_weight  dW partial sums over chunks of N*Ho rows (split-K), [S, Cout, Cin, KH, KW]
//                         (conv_backward_weight_1x1 for 1x1 kernels), then conv_sum_splits adds them
// plus gate_forward / gate_backward for the stand-alone gated activation, and conv_plane_sums /
// conv_batch_sums for bias and cond gradients.
//
// Register blocking: a thread owns CB (1, 2 or 4) channels x 4 positions along x, so every input
// load feeds CB FMAs and every weight load feeds 4. No workgroup memory (barriers are slow on the
// CPU adapters). Masked taps are never visited: the loops run over the kept rows / columns only,
// with bounds that are override constants; the colour-group condition applies at the centre tap.
//
// Dimensions in Params are those of the convolution (x: n, cin, h, w; y: cout, ho, wo) in every
// entry, whichever tensor is the entry's input or output.

struct Params {
  n: u32, cin: u32, h: u32, w: u32,
  cout: u32, ho: u32, wo: u32, threads: u32,
  pad_t: i32, pad_l: i32, cblocks: u32, xblocks: u32,
  rows: u32, chunk_rows: u32, _p0: u32, _p1: u32,
}

override KH: u32 = 3u;
override KW: u32 = 3u;
override STRIDE: u32 = 1u;
/** 0 none, 1 A, 2 B, 3 vstack. */
override MASK: u32 = 0u;
/** Colour groups of masks A/B: channel group = channel index mod GROUPS. */
override GROUPS: u32 = 1u;
/** Channels per thread (1, 2 or 4). */
override CB: u32 = 4u;
override HAS_BIAS: bool = false;
/** The addend `fres`: 0 none, 1 added after the gate (residual), 2 before it (pre-residual). */
override RES_MODE: u32 = 0u;
/** Adds cond[n, co] (z's gate terms, constant over the image) to the pre-activation. */
override HAS_COND: bool = false;
override GATE: bool = false;
override WRITE_PRE: bool = false;
/** Output positions per thread along x in conv_forward, input positions in conv_backward_data (4 or 8). */
override XP: u32 = 4u;
/** Input channels per thread in conv_backward_weight (1 or 2). */
override WCI: u32 = 1u;

override CY: u32 = KH / 2u;
override CX: u32 = KW / 2u;
override MASK_AB: bool = MASK == 1u || MASK == 2u;
/** Rows visited in full: all of them, rows <= CY (vstack), rows < CY (A, B). */
override FULL_ROWS: u32 = select(select(KH, CY + 1u, MASK == 3u), CY, MASK_AB);
/** Masks A/B visit row CY up to column CX (exclusive), then maybe the centre tap. */
override HAS_CENTRE: bool = MASK == 2u || (MASK == 1u && GROUPS > 1u);
/** Kernel rows with any kept tap: the full ones, then the centre row of masks A/B. */
override KV: u32 = FULL_ROWS + select(0u, 1u, MASK_AB);

@group(0) @binding(0) var<uniform> p: Params;

// Is the centre tap from input channel ci to output channel co kept?
fn centre_kept(ci: u32, co: u32) -> bool {
  let gi = ci % GROUPS;
  let go = co % GROUPS;
  if (MASK == 1u) { return gi < go; }
  return gi <= go;
}

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// Accumulators of the calling thread: acc_j is channel j of the block, lanes are the 4 x positions.
var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;
// Positions 4..7 when a thread owns 8 (XP = 8): each weight load then feeds 8 FMAs.
var<private> bcc0: vec4<f32>;
var<private> bcc1: vec4<f32>;
var<private> bcc2: vec4<f32>;
var<private> bcc3: vec4<f32>;
// Offsets of the block's weight filters (per channel of the block).
var<private> wb0: u32;
var<private> wb1: u32;
var<private> wb2: u32;
var<private> wb3: u32;

// ---- forward ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read> fw: array<f32>;
@group(0) @binding(3) var<storage, read> fbias: array<f32>;
@group(0) @binding(4) var<storage, read> fres: array<f32>;
@group(0) @binding(5) var<storage, read_write> fy: array<f32>;
@group(0) @binding(6) var<storage, read_write> fpre: array<f32>;
@group(0) @binding(7) var<storage, read> fcond: array<f32>;

fn fx_at(row: u32, ix: i32) -> f32 {
  let ok = ix >= 0 && ix < i32(p.w);
  return select(0.0, fx[row + u32(select(0, ix, ok))], ok);
}

fn fx4(row: u32, ix: i32) -> vec4<f32> {
  let s = i32(STRIDE);
  return vec4<f32>(fx_at(row, ix), fx_at(row, ix + s), fx_at(row, ix + 2 * s), fx_at(row, ix + 3 * s));
}

// One tap for the thread's XP positions: xv holds positions 0..3, xv2 positions 4..7 (XP = 8).
fn fwd_tap(xv: vec4<f32>, xv2: vec4<f32>, wk: u32) {
  let w0 = fw[wb0 + wk];
  acc0 += w0 * xv;
  if (XP > 4u) { bcc0 += w0 * xv2; }
  if (CB > 1u) {
    let w1 = fw[wb1 + wk];
    acc1 += w1 * xv;
    if (XP > 4u) { bcc1 += w1 * xv2; }
  }
  if (CB > 2u) {
    let w2 = fw[wb2 + wk];
    let w3 = fw[wb3 + wk];
    acc2 += w2 * xv;
    acc3 += w3 * xv;
    if (XP > 4u) {
      bcc2 += w2 * xv2;
      bcc3 += w3 * xv2;
    }
  }
}

// The input values of positions 4..7 of a tap (zeros when the thread has 4 positions).
fn fx4_hi(row: u32, ix: i32) -> vec4<f32> {
  if (XP > 4u) { return fx4(row, ix + 4 * i32(STRIDE)); }
  return vec4<f32>(0.0);
}

fn fwd_centre(xv: vec4<f32>, xv2: vec4<f32>, wk: u32, ci: u32, co0: u32) {
  if (centre_kept(ci, co0)) {
    acc0 += fw[wb0 + wk] * xv;
    if (XP > 4u) { bcc0 += fw[wb0 + wk] * xv2; }
  }
  if (CB > 1u && centre_kept(ci, co0 + 1u)) {
    acc1 += fw[wb1 + wk] * xv;
    if (XP > 4u) { bcc1 += fw[wb1 + wk] * xv2; }
  }
  if (CB > 2u) {
    if (centre_kept(ci, co0 + 2u)) {
      acc2 += fw[wb2 + wk] * xv;
      if (XP > 4u) { bcc2 += fw[wb2 + wk] * xv2; }
    }
    if (centre_kept(ci, co0 + 3u)) {
      acc3 += fw[wb3 + wk] * xv;
      if (XP > 4u) { bcc3 += fw[wb3 + wk] * xv2; }
    }
  }
}

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan4(x: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

fn safe_tanh(x: vec4<f32>) -> vec4<f32> {
  return select(tanh(clamp(x, vec4<f32>(-15.0), vec4<f32>(15.0))), x, is_nan4(x));
}

fn sigmoid4(x: vec4<f32>) -> vec4<f32> {
  // exp of a non-positive argument only, so nothing overflows.
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= vec4<f32>(0.0));
}

// Writes lanes [0, lanes) of v to channel c of an output with `channels` channels (+ residual).
fn fwd_store(n: u32, c: u32, channels: u32, oy: u32, ox0: u32, lanes: u32, v: vec4<f32>) {
  let base = ((n * channels + c) * p.ho + oy) * p.wo + ox0;
  for (var j = 0u; j < lanes; j++) {
    var out = v[j];
    if (RES_MODE == 1u) { out += fres[base + j]; }
    fy[base + j] = out;
  }
}

// Lanes [0, lanes) of channel c of the pre-residual (which has the pre-activation's cout channels); 0 past them.
fn pre_res4(n: u32, c: u32, oy: u32, ox0: u32, lanes: u32) -> vec4<f32> {
  let base = ((n * p.cout + c) * p.ho + oy) * p.wo + ox0;
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < lanes; j++) { v[j] = fres[base + j]; }
  return v;
}

fn pre_store(n: u32, c: u32, oy: u32, ox0: u32, lanes: u32, v: vec4<f32>) {
  let base = ((n * p.cout + c) * p.ho + oy) * p.wo + ox0;
  for (var j = 0u; j < lanes; j++) { fpre[base + j] = v[j]; }
}

// The epilogue of 4 output positions from ox0 (lanes past wo are not written): bias, pre-residual,
// cond, pre-activation, gate, residual, in the incremental sampler's order of additions, so both
// give the same sums.
fn fwd_epilogue(n: u32, co0: u32, oy: u32, ox0: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
  let last = p.cout - 1u;
  var b = vec4<f32>(0.0);
  if (HAS_BIAS) {
    b = vec4<f32>(fbias[co0], fbias[min(co0 + 1u, last)], fbias[min(co0 + 2u, last)], fbias[min(co0 + 3u, last)]);
  }
  let lanes = min(4u, p.wo - ox0);
  var v0 = a0 + b.x;
  var v1 = a1 + b.y;
  var v2 = a2 + b.z;
  var v3 = a3 + b.w;
  if (RES_MODE == 2u) {
    v0 += pre_res4(n, co0, oy, ox0, lanes);
    if (CB > 1u) { v1 += pre_res4(n, min(co0 + 1u, last), oy, ox0, lanes); }
    if (CB > 2u) {
      v2 += pre_res4(n, min(co0 + 2u, last), oy, ox0, lanes);
      v3 += pre_res4(n, min(co0 + 3u, last), oy, ox0, lanes);
    }
  }
  if (HAS_COND) {
    let cn = n * p.cout;
    v0 += fcond[cn + co0];
    if (CB > 1u) { v1 += fcond[cn + min(co0 + 1u, last)]; }
    if (CB > 2u) {
      v2 += fcond[cn + min(co0 + 2u, last)];
      v3 += fcond[cn + min(co0 + 3u, last)];
    }
  }
  if (WRITE_PRE) {
    pre_store(n, co0, oy, ox0, lanes, v0);
    if (CB > 1u && co0 + 1u < p.cout) { pre_store(n, co0 + 1u, oy, ox0, lanes, v1); }
    if (CB > 2u && co0 + 2u < p.cout) { pre_store(n, co0 + 2u, oy, ox0, lanes, v2); }
    if (CB > 3u && co0 + 3u < p.cout) { pre_store(n, co0 + 3u, oy, ox0, lanes, v3); }
  }
  if (GATE) {
    // Interleaved: channel 2c goes through tanh, 2c+1 through sigmoid (CB is even here).
    let half = p.cout / 2u;
    fwd_store(n, co0 / 2u, half, oy, ox0, lanes, safe_tanh(v0) * sigmoid4(v1));
    if (CB > 2u && co0 + 2u < p.cout) {
      fwd_store(n, co0 / 2u + 1u, half, oy, ox0, lanes, safe_tanh(v2) * sigmoid4(v3));
    }
  } else {
    fwd_store(n, co0, p.cout, oy, ox0, lanes, v0);
    if (CB > 1u && co0 + 1u < p.cout) { fwd_store(n, co0 + 1u, p.cout, oy, ox0, lanes, v1); }
    if (CB > 2u && co0 + 2u < p.cout) { fwd_store(n, co0 + 2u, p.cout, oy, ox0, lanes, v2); }
    if (CB > 3u && co0 + 3u < p.cout) { fwd_store(n, co0 + 3u, p.cout, oy, ox0, lanes, v3); }
  }
}

@compute @workgroup_size(64)
fn conv_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= p.threads) { return; }
  let xb = t % p.xblocks;
  var r = t / p.xblocks;
  let oy = r % p.ho;
  r = r / p.ho;
  let cb = r % p.cblocks;
  let n = r / p.cblocks;

  let co0 = cb * CB;
  let last = p.cout - 1u;
  let fsize = p.cin * KH * KW;
  // Channels past cout (a partial last block) read a valid filter and are never written.
  wb0 = co0 * fsize;
  wb1 = min(co0 + 1u, last) * fsize;
  wb2 = min(co0 + 2u, last) * fsize;
  wb3 = min(co0 + 3u, last) * fsize;
  acc0 = vec4<f32>(0.0);
  acc1 = vec4<f32>(0.0);
  acc2 = vec4<f32>(0.0);
  acc3 = vec4<f32>(0.0);
  bcc0 = vec4<f32>(0.0);
  bcc1 = vec4<f32>(0.0);
  bcc2 = vec4<f32>(0.0);
  bcc3 = vec4<f32>(0.0);

  let ox0 = xb * XP;
  let ix0 = i32(ox0 * STRIDE) - p.pad_l;
  let iy0 = i32(oy * STRIDE) - p.pad_t;
  for (var ci = 0u; ci < p.cin; ci++) {
    let plane = (n * p.cin + ci) * p.h;
    let wci = ci * KH * KW;
    for (var ky = 0u; ky < FULL_ROWS; ky++) {
      let iy = iy0 + i32(ky);
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      let row = (plane + u32(iy)) * p.w;
      for (var kx = 0u; kx < KW; kx++) {
        let ix = ix0 + i32(kx);
        fwd_tap(fx4(row, ix), fx4_hi(row, ix), wci + ky * KW + kx);
      }
    }
    if (MASK_AB) {
      let iy = iy0 + i32(CY);
      if (iy >= 0 && iy < i32(p.h)) {
        let row = (plane + u32(iy)) * p.w;
        for (var kx = 0u; kx < CX; kx++) {
          let ix = ix0 + i32(kx);
          fwd_tap(fx4(row, ix), fx4_hi(row, ix), wci + CY * KW + kx);
        }
        if (HAS_CENTRE) {
          let ix = ix0 + i32(CX);
          fwd_centre(fx4(row, ix), fx4_hi(row, ix), wci + CY * KW + CX, ci, co0);
        }
      }
    }
  }

  fwd_epilogue(n, co0, oy, ox0, acc0, acc1, acc2, acc3);
  if (XP > 4u && ox0 + 4u < p.wo) { fwd_epilogue(n, co0, oy, ox0 + 4u, bcc0, bcc1, bcc2, bcc3); }
}

// ---- backward data: d[n, ci, iy, ix] = sum g[n, co, oy, ox] w[co, ci, ky, kx], iy = oy*S + ky - pad_t
// A thread owns CB input channels and the 4 positions ix = ph + S*(4*b + j) of one phase ph, so that
// the divisibility test (ix + pad_l - kx) % S == 0 is the same for its 4 lanes and they read 4
// consecutive ox.

@group(0) @binding(1) var<storage, read> dg: array<f32>;
@group(0) @binding(2) var<storage, read> dw: array<f32>;
@group(0) @binding(3) var<storage, read> dbias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dd: array<f32>;

fn dg_at(row: u32, ox: i32) -> f32 {
  let ok = ox >= 0 && ox < i32(p.wo);
  return select(0.0, dg[row + u32(select(0, ox, ok))], ok);
}

fn dg4(row: u32, ox0: i32) -> vec4<f32> {
  return vec4<f32>(dg_at(row, ox0), dg_at(row, ox0 + 1), dg_at(row, ox0 + 2), dg_at(row, ox0 + 3));
}

// Positions 4..7 (XP = 8), else zeros.
fn dg4_hi(row: u32, ox0: i32) -> vec4<f32> {
  if (XP > 4u) { return dg4(row, ox0 + 4); }
  return vec4<f32>(0.0);
}

fn bwd_tap(row: u32, ox0: i32, wk: u32) {
  let gv = dg4(row, ox0);
  let gv2 = dg4_hi(row, ox0);
  let w0 = dw[wb0 + wk];
  acc0 += w0 * gv;
  if (XP > 4u) { bcc0 += w0 * gv2; }
  if (CB > 1u) {
    let w1 = dw[wb1 + wk];
    acc1 += w1 * gv;
    if (XP > 4u) { bcc1 += w1 * gv2; }
  }
  if (CB > 2u) {
    let w2 = dw[wb2 + wk];
    let w3 = dw[wb3 + wk];
    acc2 += w2 * gv;
    acc3 += w3 * gv;
    if (XP > 4u) {
      bcc2 += w2 * gv2;
      bcc3 += w3 * gv2;
    }
  }
}

fn bwd_centre(row: u32, ox0: i32, wk: u32, ci0: u32, co: u32) {
  let gv = dg4(row, ox0);
  let gv2 = dg4_hi(row, ox0);
  if (centre_kept(ci0, co)) {
    acc0 += dw[wb0 + wk] * gv;
    if (XP > 4u) { bcc0 += dw[wb0 + wk] * gv2; }
  }
  if (CB > 1u && centre_kept(ci0 + 1u, co)) {
    acc1 += dw[wb1 + wk] * gv;
    if (XP > 4u) { bcc1 += dw[wb1 + wk] * gv2; }
  }
  if (CB > 2u) {
    if (centre_kept(ci0 + 2u, co)) {
      acc2 += dw[wb2 + wk] * gv;
      if (XP > 4u) { bcc2 += dw[wb2 + wk] * gv2; }
    }
    if (centre_kept(ci0 + 3u, co)) {
      acc3 += dw[wb3 + wk] * gv;
      if (XP > 4u) { bcc3 += dw[wb3 + wk] * gv2; }
    }
  }
}

// The output row oy that input row iy meets through kernel row ky, or -1.
fn source_row(iy: u32, ky: u32) -> i32 {
  let t = i32(iy) + p.pad_t - i32(ky);
  if (t < 0 || t % i32(STRIDE) != 0) { return -1; }
  let oy = t / i32(STRIDE);
  return select(-1, oy, oy < i32(p.ho));
}

// Stores positions j0 + j, j < 4, of the thread's block.
fn dd_store(n: u32, c: u32, iy: u32, ph: u32, xb: u32, j0: u32, v: vec4<f32>) {
  let base = ((n * p.cin + c) * p.h + iy) * p.w;
  for (var j = 0u; j < 4u; j++) {
    let ix = ph + STRIDE * (XP * xb + j0 + j);
    if (ix < p.w) { dd[base + ix] = v[j]; }
  }
}

@compute @workgroup_size(64)
fn conv_backward_data(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= p.threads) { return; }
  let xi = t % p.xblocks;
  var r = t / p.xblocks;
  let iy = r % p.h;
  r = r / p.h;
  let cb = r % p.cblocks;
  let n = r / p.cblocks;
  let ph = xi % STRIDE;
  let xb = xi / STRIDE;

  let ci0 = cb * CB;
  let last = p.cin - 1u;
  let taps = KH * KW;
  wb0 = ci0 * taps;
  wb1 = min(ci0 + 1u, last) * taps;
  wb2 = min(ci0 + 2u, last) * taps;
  wb3 = min(ci0 + 3u, last) * taps;
  acc0 = vec4<f32>(0.0);
  acc1 = vec4<f32>(0.0);
  acc2 = vec4<f32>(0.0);
  acc3 = vec4<f32>(0.0);
  bcc0 = vec4<f32>(0.0);
  bcc1 = vec4<f32>(0.0);
  bcc2 = vec4<f32>(0.0);
  bcc3 = vec4<f32>(0.0);

  let s = i32(STRIDE);
  // With stride 1 tap kx reads ox = obase - kx + j: one base plus constants, so the loads that taps
  // share are recognised as the same load (stride 2 divides by S per tap instead).
  let obase = i32(XP * xb) + p.pad_l;
  for (var co = 0u; co < p.cout; co++) {
    let plane = (n * p.cout + co) * p.ho;
    let wco = co * p.cin * taps;
    for (var ky = 0u; ky < FULL_ROWS; ky++) {
      let oy = source_row(iy, ky);
      if (oy < 0) { continue; }
      let row = (plane + u32(oy)) * p.wo;
      for (var kx = 0u; kx < KW; kx++) {
        let tx = i32(ph) + p.pad_l - i32(kx);
        if (tx % s != 0) { continue; }
        bwd_tap(row, select(tx / s + i32(XP * xb), obase - i32(kx), STRIDE == 1u), wco + ky * KW + kx);
      }
    }
    if (MASK_AB) {
      let oy = source_row(iy, CY);
      if (oy >= 0) {
        let row = (plane + u32(oy)) * p.wo;
        for (var kx = 0u; kx < CX; kx++) {
          let tx = i32(ph) + p.pad_l - i32(kx);
          if (tx % s != 0) { continue; }
          bwd_tap(row, select(tx / s + i32(XP * xb), obase - i32(kx), STRIDE == 1u), wco + CY * KW + kx);
        }
        if (HAS_CENTRE) {
          let tx = i32(ph) + p.pad_l - i32(CX);
          if (tx % s == 0) { bwd_centre(row, select(tx / s + i32(XP * xb), obase - i32(CX), STRIDE == 1u), wco + CY * KW + CX, ci0, co); }
        }
      }
    }
  }

  var b = vec4<f32>(0.0);
  if (HAS_BIAS) {
    b = vec4<f32>(dbias[ci0], dbias[min(ci0 + 1u, last)], dbias[min(ci0 + 2u, last)], dbias[min(ci0 + 3u, last)]);
  }
  dd_store(n, ci0, iy, ph, xb, 0u, acc0 + b.x);
  if (CB > 1u && ci0 + 1u < p.cin) { dd_store(n, ci0 + 1u, iy, ph, xb, 0u, acc1 + b.y); }
  if (CB > 2u && ci0 + 2u < p.cin) { dd_store(n, ci0 + 2u, iy, ph, xb, 0u, acc2 + b.z); }
  if (CB > 3u && ci0 + 3u < p.cin) { dd_store(n, ci0 + 3u, iy, ph, xb, 0u, acc3 + b.w); }
  if (XP > 4u) {
    dd_store(n, ci0, iy, ph, xb, 4u, bcc0 + b.x);
    if (CB > 1u && ci0 + 1u < p.cin) { dd_store(n, ci0 + 1u, iy, ph, xb, 4u, bcc1 + b.y); }
    if (CB > 2u && ci0 + 2u < p.cin) { dd_store(n, ci0 + 2u, iy, ph, xb, 4u, bcc2 + b.z); }
    if (CB > 3u && ci0 + 3u < p.cin) { dd_store(n, ci0 + 3u, iy, ph, xb, 4u, bcc3 + b.w); }
  }
}

// ---- backward weight (split-K): part[s, co, ci, ky, kx] = sum over rows (n, oy) of chunk s and all ox
// of g[n, co, oy, ox] * x[n, ci, oy*S + ky - pad_t, ox*S + kx - pad_l]. A thread owns CB output
// channels (vec4 lanes) x all KW columns (k0..k6, m0..m6) of one kernel row ky of WCI (1 or 2) input
// channels and one chunk; along a row the KW inputs slide (xs0..xs6, ys0..ys6), so each output
// column costs CB + WCI * STRIDE loads for CB * KW * WCI FMAs. Params: xblocks = input-channel blocks.

@group(0) @binding(1) var<storage, read> wx: array<f32>;
@group(0) @binding(2) var<storage, read> wg: array<f32>;
@group(0) @binding(3) var<storage, read_write> wpart: array<f32>;

var<private> k0: vec4<f32>;
var<private> k1: vec4<f32>;
var<private> k2: vec4<f32>;
var<private> k3: vec4<f32>;
var<private> k4: vec4<f32>;
var<private> k5: vec4<f32>;
var<private> k6: vec4<f32>;

fn wx_at(row: u32, ix: i32) -> f32 {
  let ok = ix >= 0 && ix < i32(p.w);
  return select(0.0, wx[row + u32(select(0, ix, ok))], ok);
}

// The inputs x[row, ix + k], k < KW, under the current output column (a sliding window), and
// ys0..ys6 the same for the thread's second input channel (WCI = 2).
var<private> xs0: f32;
var<private> xs1: f32;
var<private> xs2: f32;
var<private> xs3: f32;
var<private> xs4: f32;
var<private> xs5: f32;
var<private> xs6: f32;
var<private> ys0: f32;
var<private> ys1: f32;
var<private> ys2: f32;
var<private> ys3: f32;
var<private> ys4: f32;
var<private> ys5: f32;
var<private> ys6: f32;
// The second input channel's accumulators (WCI = 2).
var<private> m0: vec4<f32>;
var<private> m1: vec4<f32>;
var<private> m2: vec4<f32>;
var<private> m3: vec4<f32>;
var<private> m4: vec4<f32>;
var<private> m5: vec4<f32>;
var<private> m6: vec4<f32>;

// Loads column k of both windows from rows row and row1 at ix + k.
fn load_xs(k: u32, row: u32, row1: u32, ix: i32) {
  let v = wx_at(row, ix + i32(k));
  var v1 = 0.0;
  if (WCI > 1u) { v1 = wx_at(row1, ix + i32(k)); }
  switch k {
    case 0u: { xs0 = v; ys0 = v1; }
    case 1u: { xs1 = v; ys1 = v1; }
    case 2u: { xs2 = v; ys2 = v1; }
    case 3u: { xs3 = v; ys3 = v1; }
    case 4u: { xs4 = v; ys4 = v1; }
    case 5u: { xs5 = v; ys5 = v1; }
    default: { xs6 = v; ys6 = v1; }
  }
}

// Moves the windows to start at ix (STRIDE past the last start): shift, then load the STRIDE new ends.
fn slide_xs(row: u32, row1: u32, ix: i32) {
  if (STRIDE == 1u) {
    xs0 = xs1; xs1 = xs2; xs2 = xs3; xs3 = xs4; xs4 = xs5; xs5 = xs6;
    ys0 = ys1; ys1 = ys2; ys2 = ys3; ys3 = ys4; ys4 = ys5; ys5 = ys6;
  } else {
    xs0 = xs2; xs1 = xs3; xs2 = xs4; xs3 = xs5; xs4 = xs6;
    ys0 = ys2; ys1 = ys3; ys2 = ys4; ys3 = ys5; ys4 = ys6;
  }
  for (var i = 0u; i < STRIDE; i++) {
    if (KW > i) { load_xs(KW - 1u - i, row, row1, ix); }
  }
}

fn macc(kx: u32) -> vec4<f32> {
  switch kx {
    case 0u: { return m0; }
    case 1u: { return m1; }
    case 2u: { return m2; }
    case 3u: { return m3; }
    case 4u: { return m4; }
    case 5u: { return m5; }
    default: { return m6; }
  }
}

// Writes one filter row (ci, ky) of the block's partial dW: masked taps and disallowed centre pairs
// as exact zeros; from row 0 also the rows no thread visits.
fn store_wrow(split: u32, co0: u32, ci: u32, ky: u32, ncols: u32, second: bool) {
  let taps = KH * KW;
  for (var j = 0u; j < CB; j++) {
    let co = co0 + j;
    if (co >= p.cout) { break; }
    let fbase = ((split * p.cout + co) * p.cin + ci) * taps;
    let base = fbase + ky * KW;
    for (var kx = 0u; kx < KW; kx++) {
      var keep = kx < ncols;
      if (MASK_AB && ky == CY && kx == CX) { keep = keep && centre_kept(ci, co); }
      let v = select(kacc(kx)[j], macc(kx)[j], second);
      wpart[base + kx] = select(0.0, v, keep);
    }
    if (ky == 0u) {
      for (var i = KV * KW; i < taps; i++) { wpart[fbase + i] = 0.0; }
    }
  }
}

fn kacc(kx: u32) -> vec4<f32> {
  switch kx {
    case 0u: { return k0; }
    case 1u: { return k1; }
    case 2u: { return k2; }
    case 3u: { return k3; }
    case 4u: { return k4; }
    case 5u: { return k5; }
    default: { return k6; }
  }
}

@compute @workgroup_size(64)
fn conv_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= p.threads) { return; }
  // Threads only for the kernel rows a mask keeps (KV of KH), so no SIMD lane idles on a masked row.
  let ky = t % KV;
  var r = t / KV;
  // WCI input channels per thread (xblocks = their blocks): each gradient load then feeds WCI * KW FMAs.
  let ci = (r % p.xblocks) * WCI;
  let ci1 = min(ci + 1u, p.cin - 1u);
  r = r / p.xblocks;
  let cb = r % p.cblocks;
  let split = r / p.cblocks;

  let co0 = cb * CB;
  let last = p.cout - 1u;
  let c1 = min(co0 + 1u, last);
  let c2 = min(co0 + 2u, last);
  let c3 = min(co0 + 3u, last);
  k0 = vec4<f32>(0.0);
  k1 = vec4<f32>(0.0);
  k2 = vec4<f32>(0.0);
  k3 = vec4<f32>(0.0);
  k4 = vec4<f32>(0.0);
  k5 = vec4<f32>(0.0);
  k6 = vec4<f32>(0.0);
  m0 = vec4<f32>(0.0);
  m1 = vec4<f32>(0.0);
  m2 = vec4<f32>(0.0);
  m3 = vec4<f32>(0.0);
  m4 = vec4<f32>(0.0);
  m5 = vec4<f32>(0.0);
  m6 = vec4<f32>(0.0);

  // Columns of this kernel row that the mask keeps (0: the row is masked out, never visited).
  var ncols = select(0u, KW, ky < FULL_ROWS);
  if (MASK_AB && ky == CY) { ncols = CX + select(0u, 1u, HAS_CENTRE); }

  let s = i32(STRIDE);
  let r0 = split * p.chunk_rows;
  let r1 = min(p.rows, r0 + p.chunk_rows);
  if (ncols > 0u) {
    for (var rr = r0; rr < r1; rr++) {
      let n = rr / p.ho;
      let oy = rr % p.ho;
      let iy = i32(oy * STRIDE + ky) - p.pad_t;
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      let xrow = ((n * p.cin + ci) * p.h + u32(iy)) * p.w;
      let xrow1 = xrow + (ci1 - ci) * p.h * p.w;
      let gplane = n * p.cout;
      let g0 = ((gplane + co0) * p.ho + oy) * p.wo;
      let g1 = ((gplane + c1) * p.ho + oy) * p.wo;
      let g2 = ((gplane + c2) * p.ho + oy) * p.wo;
      let g3 = ((gplane + c3) * p.ho + oy) * p.wo;
      // The KW inputs of output ox slide along the row: load them once, then STRIDE new ones per ox.
      var ix = -p.pad_l;
      for (var k = 0u; k < KW; k++) { load_xs(k, xrow, xrow1, ix); }
      for (var ox = 0u; ox < p.wo; ox++) {
        var gv = vec4<f32>(wg[g0 + ox], 0.0, 0.0, 0.0);
        if (CB > 1u) { gv.y = wg[g1 + ox]; }
        if (CB > 2u) {
          gv.z = wg[g2 + ox];
          gv.w = wg[g3 + ox];
        }
        // All KW columns, also past ncols on a mask's centre row: those sums are dropped at the
        // store, and the loop body stays free of per-lane conditions.
        k0 += gv * xs0;
        if (KW > 1u) { k1 += gv * xs1; }
        if (KW > 2u) { k2 += gv * xs2; }
        if (KW > 3u) { k3 += gv * xs3; }
        if (KW > 4u) { k4 += gv * xs4; }
        if (KW > 5u) { k5 += gv * xs5; }
        if (KW > 6u) { k6 += gv * xs6; }
        if (WCI > 1u) {
          m0 += gv * ys0;
          if (KW > 1u) { m1 += gv * ys1; }
          if (KW > 2u) { m2 += gv * ys2; }
          if (KW > 3u) { m3 += gv * ys3; }
          if (KW > 4u) { m4 += gv * ys4; }
          if (KW > 5u) { m5 += gv * ys5; }
          if (KW > 6u) { m6 += gv * ys6; }
        }
        ix += s;
        slide_xs(xrow, xrow1, ix);
      }
    }
  }

  store_wrow(split, co0, ci, ky, ncols, false);
  if (WCI > 1u && ci + 1u < p.cin) { store_wrow(split, co0, ci + 1u, ky, ncols, true); }
}

// ---- backward weight for 1x1 kernels: one tap, so a thread owns CB output channels (vec4 lanes)
// x 4 input channels (k0..k3) instead, and each loaded gradient feeds 4 input channels.
// Params as conv_backward_weight, with xblocks = input-channel blocks of 4.

@compute @workgroup_size(64)
fn conv_backward_weight_1x1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= p.threads) { return; }
  let cib = t % p.xblocks;
  let r = t / p.xblocks;
  let cb = r % p.cblocks;
  let split = r / p.cblocks;

  let co0 = cb * CB;
  let last = p.cout - 1u;
  let c1 = min(co0 + 1u, last);
  let c2 = min(co0 + 2u, last);
  let c3 = min(co0 + 3u, last);
  let ci0 = cib * 4u;
  let lastci = p.cin - 1u;
  let i1 = min(ci0 + 1u, lastci);
  let i2 = min(ci0 + 2u, lastci);
  let i3 = min(ci0 + 3u, lastci);
  k0 = vec4<f32>(0.0);
  k1 = vec4<f32>(0.0);
  k2 = vec4<f32>(0.0);
  k3 = vec4<f32>(0.0);

  // Mask A without colour groups drops the only tap: nothing to visit.
  let visits = !MASK_AB || HAS_CENTRE;
  let s = i32(STRIDE);
  let r0 = split * p.chunk_rows;
  let r1 = min(p.rows, r0 + p.chunk_rows);
  let plane = p.h * p.w;
  if (visits) {
    for (var rr = r0; rr < r1; rr++) {
      let n = rr / p.ho;
      let oy = rr % p.ho;
      let iy = i32(oy * STRIDE) - p.pad_t;
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      let x0 = ((n * p.cin + ci0) * p.h + u32(iy)) * p.w;
      let x1 = x0 + (i1 - ci0) * plane;
      let x2 = x0 + (i2 - ci0) * plane;
      let x3 = x0 + (i3 - ci0) * plane;
      let gplane = n * p.cout;
      let g0 = ((gplane + co0) * p.ho + oy) * p.wo;
      let g1 = ((gplane + c1) * p.ho + oy) * p.wo;
      let g2 = ((gplane + c2) * p.ho + oy) * p.wo;
      let g3 = ((gplane + c3) * p.ho + oy) * p.wo;
      for (var ox = 0u; ox < p.wo; ox++) {
        let ix = i32(ox) * s - p.pad_l;
        if (ix < 0 || ix >= i32(p.w)) { continue; }
        var gv = vec4<f32>(wg[g0 + ox], 0.0, 0.0, 0.0);
        if (CB > 1u) { gv.y = wg[g1 + ox]; }
        if (CB > 2u) {
          gv.z = wg[g2 + ox];
          gv.w = wg[g3 + ox];
        }
        let u = u32(ix);
        k0 += gv * wx[x0 + u];
        k1 += gv * wx[x1 + u];
        k2 += gv * wx[x2 + u];
        k3 += gv * wx[x3 + u];
      }
    }
  }

  for (var j = 0u; j < CB; j++) {
    let co = co0 + j;
    if (co >= p.cout) { break; }
    for (var c = 0u; c < 4u; c++) {
      let ci = ci0 + c;
      if (ci >= p.cin) { break; }
      let keep = visits && (!MASK_AB || centre_kept(ci, co));
      wpart[(split * p.cout + co) * p.cin + ci] = select(0.0, kacc(c)[j], keep);
    }
  }
}

// ---- gated activation over interleaved channels, optionally on a band of rows and with z's terms:
// y[n, c, r, x] = tanh(x[n, 2c, r0 + r, x] + cond[n, 2c]) * sigmoid(x[n, 2c+1, r0 + r, x] + cond[n, 2c+1])
// Params: n, cin = C (output channels), h = rows of x, w = row length (trailing axes flattened),
// ho = rows of y, pad_t = r0, threads = planes (n * C). Workgroups: x over a plane's positions, y (z past
// the limit) over planes; a band of rows is contiguous in its plane, so no index needs a division.

@group(0) @binding(1) var<storage, read> gx: array<f32>;
@group(0) @binding(2) var<storage, read_write> gy: array<f32>;
@group(0) @binding(3) var<storage, read> gcond: array<f32>;

@compute @workgroup_size(64)
fn gate_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x; // position in the band
  let r = gid.y + gid.z * nwg.y; // n * C + c
  let band = p.ho * p.w;
  if (k >= band || r >= p.threads) { return; }
  let c2 = 2u * r; // n * 2C + 2c
  let plane = p.h * p.w;
  let a = c2 * plane + u32(p.pad_t) * p.w + k;
  var t = gx[a];
  var s = gx[a + plane];
  if (HAS_COND) {
    t += gcond[c2];
    s += gcond[c2 + 1u];
  }
  let v = safe_tanh(vec4<f32>(t)) * sigmoid4(vec4<f32>(s));
  gy[r * band + k] = v.x;
}

// dx over all rows of x (zero outside the band), from dy and x (and cond). Params and workgroups as
// gate_forward, x over all of a plane.
@group(0) @binding(1) var<storage, read> bg: array<f32>;
@group(0) @binding(2) var<storage, read> bx: array<f32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<f32>;
@group(0) @binding(4) var<storage, read> bcond: array<f32>;

@compute @workgroup_size(64)
fn gate_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x; // position in the plane
  let r = gid.y + gid.z * nwg.y; // n * C + c
  let plane = p.h * p.w;
  if (k >= plane || r >= p.threads) { return; }
  let c2 = 2u * r; // n * 2C + 2c
  let a = c2 * plane + k;
  let lo = u32(p.pad_t) * p.w;
  let band = p.ho * p.w;
  if (k < lo || k >= lo + band) {
    bdx[a] = 0.0;
    bdx[a + plane] = 0.0;
    return;
  }
  var t = bx[a];
  var s = bx[a + plane];
  if (HAS_COND) {
    t += bcond[c2];
    s += bcond[c2 + 1u];
  }
  let th = safe_tanh(vec4<f32>(t)).x;
  let sg = sigmoid4(vec4<f32>(s)).x;
  let g = bg[r * band + k - lo];
  bdx[a] = g * sg * (1.0 - th * th);
  bdx[a + plane] = g * th * sg * (1.0 - sg);
}

// ---- per-channel sums for bias and cond gradients, without workgroup barriers:
// conv_plane_sums: out[i] = sum over s < h of g[i * h + s] (one thread per (n, c) plane; threads = n * C);
// conv_batch_sums: out[c] = sum over n of g[n * cin + c] (threads = cin).

@group(0) @binding(1) var<storage, read> cg: array<f32>;
@group(0) @binding(2) var<storage, read_write> cout_sums: array<f32>;

@compute @workgroup_size(64)
fn conv_plane_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  if (i >= p.threads) { return; }
  let base = i * p.h;
  // Four partial sums: independent adds, and a shorter rounding chain.
  var acc = vec4<f32>(0.0);
  let full = p.h / 4u * 4u;
  for (var s = 0u; s < full; s += 4u) {
    acc += vec4<f32>(cg[base + s], cg[base + s + 1u], cg[base + s + 2u], cg[base + s + 3u]);
  }
  for (var s = full; s < p.h; s++) { acc.x += cg[base + s]; }
  cout_sums[i] = (acc.x + acc.y) + (acc.z + acc.w);
}

@compute @workgroup_size(64)
fn conv_batch_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = linear_id(gid, nwg);
  if (c >= p.threads) { return; }
  var total = 0.0;
  for (var n = 0u; n < p.n; n++) { total += cg[n * p.cin + c]; }
  cout_sums[c] = total;
}

// ---- the second pass of split-K: dw[i] = sum over s < splits of part[s * count + i]
// Params: threads = count (elements of dW), rows = splits. One thread per element, no barriers.

@group(0) @binding(1) var<storage, read> spart: array<f32>;
@group(0) @binding(2) var<storage, read_write> sout: array<f32>;

@compute @workgroup_size(64)
fn conv_sum_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  if (i >= p.threads) { return; }
  var total = 0.0;
  for (var s = 0u; s < p.rows; s++) { total += spart[s * p.threads + i]; }
  sout[i] = total;
}
