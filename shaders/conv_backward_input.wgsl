// The gradient w.r.t. the input (conv_common.wgsl and conv_register_block.wgsl go in front).
//   conv_backward_input  grad_input = grad_out (*)^T weight: the transposed convolution (gathers over
//                        output positions; stride 2 by the divisibility test), masks included. Also
//                        convTranspose2d's forward, with its bias.
//   gate_backward        the gated activation's gradient w.r.t. its pre-activation (cond's terms, if
//                        any, added to it first); also the backward of conv_forward's fused gate.
//
// Register blocking (conv_register_block.wgsl), as in conv_forward: a thread owns CB (1, 2 or 4) input channels x XP (4 or 8)
// input positions, so every weight load feeds XP FMAs.

/** Adds bias[ci] to grad_input (convTranspose2d's bias). */
override HAS_BIAS: bool = false;
/** gate_backward: adds cond[n, c] to the pre-activation, as gate_forward does. */
override HAS_COND: bool = false;
/** Adds prior_grad (the gradient the input gathered from its other users) to what is stored. */
override HAS_PRIOR: bool = false;

// ---- grad_input[n, ci, iy, ix] = sum grad_out[n, co, oy, ox] weight[co, ci, ky, kx], iy = oy*S + ky - pad_t
// A thread owns CB input channels and the 4 positions ix = ph + S*(4*b + j) of one phase ph, so that
// the divisibility test (ix + pad_l - kx) % S == 0 is the same for its 4 lanes and they read 4
// consecutive ox.

@group(0) @binding(1) var<storage, read> grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_input: array<f32>;
@group(0) @binding(5) var<storage, read> prior_grad: array<f32>;   // grad_input's shape (any buffer without a prior)

fn grad_out_at(row: u32, ox: i32) -> f32 {
  let ok = ox >= 0 && ox < i32(params.wo);
  return select(0.0, grad_out[row + u32(select(0, ox, ok))], ok);
}

fn grad_out4(row: u32, ox0: i32) -> vec4<f32> {
  return vec4<f32>(grad_out_at(row, ox0), grad_out_at(row, ox0 + 1), grad_out_at(row, ox0 + 2), grad_out_at(row, ox0 + 3));
}

// Positions 4..7 (XP = 8), else zeros.
fn grad_out4_hi(row: u32, ox0: i32) -> vec4<f32> {
  if (XP > 4u) { return grad_out4(row, ox0 + 4); }
  return vec4<f32>(0.0);
}

// Values 4k..4k+3 of a row window of `size` values from ox (block_row; stride 1), zeros past it.
fn grad_out_window(row: u32, ox: i32, k: u32, size: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  let b = ox + 4 * i32(k);
  if (size > 4u * k) { v.x = grad_out_at(row, b); }
  if (size > 4u * k + 1u) { v.y = grad_out_at(row, b + 1); }
  if (size > 4u * k + 2u) { v.z = grad_out_at(row, b + 2); }
  if (size > 4u * k + 3u) { v.w = grad_out_at(row, b + 3); }
  return v;
}

// The output row oy that input row iy meets through kernel row ky, or -1.
fn source_row(iy: u32, ky: u32) -> i32 {
  let t = i32(iy) + params.pad_t - i32(ky);
  if (t < 0 || t % i32(STRIDE) != 0) { return -1; }
  let oy = t / i32(STRIDE);
  return select(-1, oy, oy < i32(params.ho));
}

// Stores positions j0 + j, j < 4, of the thread's block.
fn store_grad_input(n: u32, c: u32, iy: u32, ph: u32, xb: u32, j0: u32, v: vec4<f32>) {
  let base = ((n * params.cin + c) * params.h + iy) * params.w;
  for (var j = 0u; j < 4u; j++) {
    let ix = ph + STRIDE * (XP * xb + j0 + j);
    if (ix < params.w) {
      var x = v[j];
      if (HAS_PRIOR) { x += prior_grad[base + ix]; }
      grad_input[base + ix] = x;
    }
  }
}

// Stores a block (+ bias) of input row iy: a_j channel j at positions 0..3, h_j at 4..7.
fn store_rows(n: u32, ci0: u32, iy: u32, ph: u32, xb: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, h0: vec4<f32>, h1: vec4<f32>, h2: vec4<f32>, h3: vec4<f32>) {
  let last = params.cin - 1u;
  var b = vec4<f32>(0.0);
  if (HAS_BIAS) {
    b = vec4<f32>(bias[ci0], bias[min(ci0 + 1u, last)], bias[min(ci0 + 2u, last)], bias[min(ci0 + 3u, last)]);
  }
  store_grad_input(n, ci0, iy, ph, xb, 0u, a0 + b.x);
  if (CB > 1u && ci0 + 1u < params.cin) { store_grad_input(n, ci0 + 1u, iy, ph, xb, 0u, a1 + b.y); }
  if (CB > 2u && ci0 + 2u < params.cin) { store_grad_input(n, ci0 + 2u, iy, ph, xb, 0u, a2 + b.z); }
  if (CB > 3u && ci0 + 3u < params.cin) { store_grad_input(n, ci0 + 3u, iy, ph, xb, 0u, a3 + b.w); }
  if (XP > 4u) {
    store_grad_input(n, ci0, iy, ph, xb, 4u, h0 + b.x);
    if (CB > 1u && ci0 + 1u < params.cin) { store_grad_input(n, ci0 + 1u, iy, ph, xb, 4u, h1 + b.y); }
    if (CB > 2u && ci0 + 2u < params.cin) { store_grad_input(n, ci0 + 2u, iy, ph, xb, 4u, h2 + b.z); }
    if (CB > 3u && ci0 + 3u < params.cin) { store_grad_input(n, ci0 + 3u, iy, ph, xb, 4u, h3 + b.w); }
  }
}

// Stores the thread's block (the register block's acc_*).
fn store_block(n: u32, ci0: u32, iy: u32, ph: u32, xb: u32) {
  store_rows(n, ci0, iy, ph, xb, acc0, acc1, acc2, acc3, acc_hi0, acc_hi1, acc_hi2, acc_hi3);
}

@compute @workgroup_size(64)
fn conv_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, params.h);
  let xi = slot.x;
  let iy = slot.y;
  let cb = slot.z;
  let n = slot.w;
  let ph = xi % STRIDE;
  let xb = xi / STRIDE;

  let ci0 = cb * CB;
  let last = params.cin - 1u;
  let taps = KH * KW;
  block_start(ci0, last, taps);

  let s = i32(STRIDE);
  // With stride 1 tap kx reads ox = obase - kx + j: one base plus constants, so the loads that taps
  // share are recognised as the same load (stride 2 divides by S per tap instead).
  let obase = i32(XP * xb) + params.pad_l;
  // The first kernel row and column whose taps reach this thread's row and phase (stride > 1).
  let ky0 = u32(((i32(iy) + params.pad_t) % s + s) % s);
  let kx0 = u32(((i32(ph) + params.pad_l) % s + s) % s);
  for (var co = 0u; co < params.cout; co++) {
    let plane = (n * params.cout + co) * params.ho;
    let wco = co * params.cin * taps;
    // At stride S only every S-th kernel row and column meets this thread's row and phase: start at
    // the first that does and step by S (a skipped iteration costs SwiftShader as much as a tap).
    for (var ky = select(0u, ky0, STRIDE > 1u); ky < FULL_ROWS; ky += STRIDE) {
      let oy = source_row(iy, ky);
      if (oy < 0) { continue; }
      let row = (plane + u32(oy)) * params.wo;
      if (STRIDE > 1u) {
        for (var kx = kx0; kx < KW; kx += STRIDE) {
          let ox0 = (i32(ph) + params.pad_l - i32(kx)) / s + i32(XP * xb);
          block_tap(grad_out4(row, ox0), grad_out4_hi(row, ox0), wco + ky * KW + kx);
        }
        continue;
      }
      if (UNROLL_ROWS) {
        // Tap kx reads ox = obase - kx + j: the window from obase - (KW - 1), shifted by KW - 1 - kx.
        let o = obase - i32(KW - 1u);
        block_row(grad_out_window(row, o, 0u, WINDOW), grad_out_window(row, o, 1u, WINDOW), grad_out_window(row, o, 2u, WINDOW), grad_out_window(row, o, 3u, WINDOW), wco + ky * KW, true, KW);
        continue;
      }
      for (var kx = 0u; kx < KW; kx++) {
        let tx = i32(ph) + params.pad_l - i32(kx);
        if (tx % s != 0) { continue; }
        let ox0 = select(tx / s + i32(XP * xb), obase - i32(kx), STRIDE == 1u);
        block_tap(grad_out4(row, ox0), grad_out4_hi(row, ox0), wco + ky * KW + kx);
      }
    }
    if (MASK_AB) {
      let oy = source_row(iy, CY);
      if (oy >= 0) {
        let row = (plane + u32(oy)) * params.wo;
        if (UNROLL_ROWS && CENTRE_PLAIN) {
          // Taps 0..CENTRE_TAPS-1 of the centre row: tap kx reads ox = obase - kx + j, the window from
          // obase - (CENTRE_TAPS - 1) shifted by CENTRE_TAPS - 1 - kx.
          let o = obase - i32(CENTRE_TAPS) + 1;
          let size = CENTRE_WINDOW;
          if (CENTRE_TAPS > 0u) {
            block_row(grad_out_window(row, o, 0u, size), grad_out_window(row, o, 1u, size), grad_out_window(row, o, 2u, size), grad_out_window(row, o, 3u, size), wco + CY * KW, true, CENTRE_TAPS);
          }
        } else {
          for (var kx = 0u; kx < CX; kx++) {
            let tx = i32(ph) + params.pad_l - i32(kx);
            if (tx % s != 0) { continue; }
            let ox0 = select(tx / s + i32(XP * xb), obase - i32(kx), STRIDE == 1u);
            block_tap(grad_out4(row, ox0), grad_out4_hi(row, ox0), wco + CY * KW + kx);
          }
          if (HAS_CENTRE) {
            let tx = i32(ph) + params.pad_l - i32(CX);
            if (tx % s == 0) {
              let ox0 = select(tx / s + i32(XP * xb), obase - i32(CX), STRIDE == 1u);
              let kept = vec4<bool>(centre_kept(ci0, co), centre_kept(ci0 + 1u, co), centre_kept(ci0 + 2u, co), centre_kept(ci0 + 3u, co));
              block_centre(grad_out4(row, ox0), grad_out4_hi(row, ox0), wco + CY * KW + CX, kept);
            }
          }
        }
      }
    }
  }

  store_block(n, ci0, iy, ph, xb);
}

// ---- two input rows per thread (conv.ts's twoRows(): stride 1, KW <= 7; masks A/B only without
// colour groups): input rows iy and iy + 1 meet output row iy + pad_t - ky through kernel rows ky and
// ky + 1, so each weight loaded feeds both rows' blocks (two_row_taps in conv_register_block.wgsl).
// acc_* hold row iy, below_* row iy + 1.

// Window k of grad_out row oy, zeros when the row is outside the output.
fn grad_out_row_window(plane: u32, oy: i32, o: i32, k: u32) -> vec4<f32> {
  if (oy < 0 || oy >= i32(params.ho)) { return vec4<f32>(0.0); }
  return grad_out_window((plane + u32(oy)) * params.wo, o, k, WINDOW);
}

@compute @workgroup_size(64)
fn conv_backward_input_two_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, (params.h + 1u) / 2u);
  let xb = slot.x;
  let iy = 2u * slot.y;
  let cb = slot.z;
  let n = slot.w;

  let ci0 = cb * CB;
  let taps = KH * KW;
  block_start(ci0, params.cin - 1u, taps);
  below_start();
  // Tap kx reads ox = obase - kx + j: the window from obase - (KW - 1), shifted by KW - 1 - kx.
  let o = i32(XP * xb) + params.pad_l - i32(KW - 1u);
  let oy0 = i32(iy) + params.pad_t;
  for (var co = 0u; co < params.cout; co++) {
    let plane = (n * params.cout + co) * params.ho;
    let wco = co * params.cin * taps;
    // Row iy + 1's output row for ky = 0; each step's row iy output row is the next step's row iy + 1 one.
    var b0 = grad_out_row_window(plane, oy0 + 1, o, 0u);
    var b1 = grad_out_row_window(plane, oy0 + 1, o, 1u);
    var b2 = grad_out_row_window(plane, oy0 + 1, o, 2u);
    var b3 = grad_out_row_window(plane, oy0 + 1, o, 3u);
    for (var ky = 0u; ky < FULL_ROWS; ky++) {
      let oy = oy0 - i32(ky);
      let a0 = grad_out_row_window(plane, oy, o, 0u);
      let a1 = grad_out_row_window(plane, oy, o, 1u);
      let a2 = grad_out_row_window(plane, oy, o, 2u);
      let a3 = grad_out_row_window(plane, oy, o, 3u);
      two_row_taps(a0, a1, a2, a3, b0, b1, b2, b3, wco + ky * KW, true, KW);
      b0 = a0;
      b1 = a1;
      b2 = a2;
      b3 = a3;
    }
    if (MASK_AB) {
      // The centre row's kept taps (masks A/B without colour groups): b is row iy + 1's output row
      // through kernel row CY; row iy's is the one above it.
      let oy = oy0 - i32(CY);
      let a0 = grad_out_row_window(plane, oy, o, 0u);
      let a1 = grad_out_row_window(plane, oy, o, 1u);
      let a2 = grad_out_row_window(plane, oy, o, 2u);
      let a3 = grad_out_row_window(plane, oy, o, 3u);
      two_row_taps(a0, a1, a2, a3, b0, b1, b2, b3, wco + CY * KW, true, CENTRE_TAPS);
    }
  }

  store_block(n, ci0, iy, 0u, xb);
  if (iy + 1u < params.h) {
    store_rows(n, ci0, iy + 1u, 0u, xb, below0, below1, below2, below3, below_hi0, below_hi1, below_hi2, below_hi3);
  }
}

// ---- unmasked stride 2 (conv.ts's stridePairs(); KW <= 7): a thread owns CB input channels x 8
// consecutive input positions ix = 8 xb + i, both phases: acc_j the even ones (ix = 2 (m0 + j),
// m0 = 4 xb), acc_hi_j the odd ones. Each kernel column kx then feeds one phase, (kx + PAD_L) % 2, at
// ox = m0 + j + d(kx), d(kx) = (phase + PAD_L - kx) / 2, a constant: a row's taps all read one window
// of grad_out from m0 + PAIR_DMIN, unrolled, with no per-thread parity test (which made the general
// entry's stride-2 loop cost more than its arithmetic on SwiftShader).

/** The forward's left padding (stridePairs() sets it; the kernel columns' phases depend on it). */
override PAD_L: i32 = 0;
/** d(kx) of the last column (the smallest) and of column 0 (the largest); the window is 4 + their span. */
override PAIR_DMIN: i32 = ((i32(KW) - 1 + PAD_L) % 2 + PAD_L - i32(KW) + 1) / 2;
override PAIR_DMAX: i32 = (PAD_L % 2 + PAD_L) / 2;
override PAIR_WINDOW: u32 = u32(4 + PAIR_DMAX - PAIR_DMIN);

// Column kx of a row: window values from its shift, into the even or odd positions' accumulators.
fn pair_column(w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, wrow: u32, kx: u32) {
  let odd = (kx + u32(PAD_L)) % 2u == 1u;
  let v = window_at(w0, w1, w2, u32((select(0, 1, odd) + PAD_L - i32(kx)) / 2 - PAIR_DMIN));
  let wk = wrow + kx;
  let f0 = weight[filter0 + wk];
  var f1 = 0.0;
  var f2 = 0.0;
  var f3 = 0.0;
  if (CB > 1u) { f1 = weight[filter1 + wk]; }
  if (CB > 2u) {
    f2 = weight[filter2 + wk];
    f3 = weight[filter3 + wk];
  }
  if (odd) {
    acc_hi0 += f0 * v;
    if (CB > 1u) { acc_hi1 += f1 * v; }
    if (CB > 2u) {
      acc_hi2 += f2 * v;
      acc_hi3 += f3 * v;
    }
  } else {
    acc0 += f0 * v;
    if (CB > 1u) { acc1 += f1 * v; }
    if (CB > 2u) {
      acc2 += f2 * v;
      acc3 += f3 * v;
    }
  }
}

@compute @workgroup_size(64)
fn conv_backward_input_s2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, params.h);
  let xb = slot.x;
  let iy = slot.y;
  let cb = slot.z;
  let n = slot.w;

  let ci0 = cb * CB;
  let taps = KH * KW;
  block_start(ci0, params.cin - 1u, taps);
  let o = i32(4u * xb) + PAIR_DMIN;
  let size = PAIR_WINDOW;
  // The first kernel row whose taps reach input row iy; then every second one.
  let ky0 = u32((i32(iy) + params.pad_t) % 2);
  for (var co = 0u; co < params.cout; co++) {
    let plane = (n * params.cout + co) * params.ho;
    let wco = co * params.cin * taps;
    for (var ky = ky0; ky < KH; ky += 2u) {
      let oy = source_row(iy, ky);
      if (oy < 0) { continue; }
      let row = (plane + u32(oy)) * params.wo;
      let w0 = grad_out_window(row, o, 0u, size);
      let w1 = grad_out_window(row, o, 1u, size);
      let w2 = grad_out_window(row, o, 2u, size);
      let wrow = wco + ky * KW;
      pair_column(w0, w1, w2, wrow, 0u);
      if (KW > 1u) { pair_column(w0, w1, w2, wrow, 1u); }
      if (KW > 2u) { pair_column(w0, w1, w2, wrow, 2u); }
      if (KW > 3u) { pair_column(w0, w1, w2, wrow, 3u); }
      if (KW > 4u) { pair_column(w0, w1, w2, wrow, 4u); }
      if (KW > 5u) { pair_column(w0, w1, w2, wrow, 5u); }
      if (KW > 6u) { pair_column(w0, w1, w2, wrow, 6u); }
    }
  }

  // Even positions are phase 0 of the general entry's layout with XP = 4, odd ones phase 1.
  let none = vec4<f32>(0.0);
  store_rows(n, ci0, iy, 0u, xb, acc0, acc1, acc2, acc3, none, none, none, none);
  store_rows(n, ci0, iy, 1u, xb, acc_hi0, acc_hi1, acc_hi2, acc_hi3, none, none, none, none);
}

// Unmasked 1x1 kernels at stride 1 (conv.ts's pointwise()): one tap per output channel (weight offset co * cin),
// two channels a step, in an entry of its own, as conv_forward_1x1.
@compute @workgroup_size(64)
fn conv_backward_input_1x1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, params.h);
  let xb = slot.x;
  let iy = slot.y;
  let cb = slot.z;
  let n = slot.w;

  let ci0 = cb * CB;
  block_start(ci0, params.cin - 1u, 1u);
  let obase = i32(XP * xb) + params.pad_l;
  let oy = i32(iy) + params.pad_t;
  if (oy >= 0 && oy < i32(params.ho)) {
    let hw = params.ho * params.wo;
    let row0 = (n * params.cout * params.ho + u32(oy)) * params.wo;
    let pairs = params.cout / 2u;
    for (var q = 0u; q < pairs; q++) {
      let co = 2u * q;
      let row = row0 + co * hw;
      block_tap(grad_out4(row, obase), grad_out4_hi(row, obase), co * params.cin);
      block_tap(grad_out4(row + hw, obase), grad_out4_hi(row + hw, obase), (co + 1u) * params.cin);
    }
    if (params.cout % 2u == 1u) {
      let co = params.cout - 1u;
      block_tap(grad_out4(row0 + co * hw, obase), grad_out4_hi(row0 + co * hw, obase), co * params.cin);
    }
  }
  store_block(n, ci0, iy, 0u, xb);
}

// ---- the gate's gradient: gate_grad_input over all rows of the pre-activation gate_input (zero outside
// the band), from gate_grad_out and gate_input (and gate_cond). Params and workgroups as gate_forward,
// x over all of a plane.
@group(0) @binding(1) var<storage, read> gate_grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> gate_input: array<f32>;
@group(0) @binding(3) var<storage, read_write> gate_grad_input: array<f32>;
@group(0) @binding(4) var<storage, read> gate_cond: array<f32>;
@group(0) @binding(5) var<storage, read> gate_prior_grad: array<f32>;   // gate_input's shape (with HAS_PRIOR)

@compute @workgroup_size(64)
fn gate_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x; // position in the plane
  let r = gid.y + gid.z * nwg.y; // n * C + c
  let plane = params.h * params.w;
  if (k >= plane || r >= params.threads) { return; }
  let c2 = 2u * r; // n * 2C + 2c
  let a = c2 * plane + k;
  let lo = u32(params.pad_t) * params.w;
  let band = params.ho * params.w;
  if (k < lo || k >= lo + band) {
    var zt = 0.0;
    var zs = 0.0;
    if (HAS_PRIOR) {
      zt = gate_prior_grad[a];
      zs = gate_prior_grad[a + plane];
    }
    gate_grad_input[a] = zt;
    gate_grad_input[a + plane] = zs;
    return;
  }
  var t = gate_input[a];
  var s = gate_input[a + plane];
  if (HAS_COND) {
    t += gate_cond[c2];
    s += gate_cond[c2 + 1u];
  }
  let th = safe_tanh(vec4<f32>(t)).x;
  let sg = sigmoid4(vec4<f32>(s)).x;
  let g = gate_grad_out[r * band + k - lo];
  var gt = g * sg * (1.0 - th * th);
  var gs = g * th * sg * (1.0 - sg);
  if (HAS_PRIOR) {
    gt += gate_prior_grad[a];
    gs += gate_prior_grad[a + plane];
  }
  gate_grad_input[a] = gt;
  gate_grad_input[a + plane] = gs;
}
