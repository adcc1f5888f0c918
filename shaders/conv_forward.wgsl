// The forward convolution and the stand-alone gate's forward (conv_common.wgsl and conv_register_block.wgsl go in front).
//   conv_forward  output = input (*) weight, with masks, stride, padding and a fused epilogue (+bias,
//                 +pre-residual, +per-(image, channel) cond, gated activation over interleaved
//                 channels, +residual). Also convTranspose2d's gradient w.r.t. its input.
//   gate_forward  the gated activation alone, optionally on a band of rows and with z's terms.
//
// Register blocking (conv_register_block.wgsl): a thread owns CB (1, 2 or 4) output channels x XP (4 or 8)
// positions along x, so every input load feeds CB FMAs and every weight load feeds XP.

override HAS_BIAS: bool = false;
/** The `addend` binding: 0 none, 1 added after the gate (residual), 2 before it (pre-residual). */
override RES_MODE: u32 = 0u;
/** Adds cond[n, co] (z's gate terms, constant over the image) to the pre-activation. */
override HAS_COND: bool = false;
override GATE: bool = false;
/** Also writes the pre-activation (before the gate) to `pre_activation`, for the gate's gradient. */
override WRITE_PRE: bool = false;

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addend: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;
@group(0) @binding(6) var<storage, read_write> pre_activation: array<f32>;
@group(0) @binding(7) var<storage, read> cond: array<f32>;

/**
 * The input is a zero-padded copy (conv_pad_input) on which the conv is a valid one, so reads need no
 * bounds checks: the two-row and four-row entries, conv_forward at stride 2 (a check inside a tap loop
 * halves SwiftShader's rate: docs/performance.md).
 */
override PADDED: bool = false;

fn input_at(row: u32, ix: i32) -> f32 {
  if (PADDED) { return input[row + u32(ix)]; }
  let ok = ix >= 0 && ix < i32(params.w);
  return select(0.0, input[row + u32(select(0, ix, ok))], ok);
}

fn input4(row: u32, ix: i32) -> vec4<f32> {
  let s = i32(STRIDE);
  return vec4<f32>(input_at(row, ix), input_at(row, ix + s), input_at(row, ix + 2 * s), input_at(row, ix + 3 * s));
}

// Values 4k..4k+3 of a row window of `size` values from ix (block_row; stride 1), zeros past it.
fn input_window(row: u32, ix: i32, k: u32, size: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  let b = ix + 4 * i32(k);
  if (size > 4u * k) { v.x = input_at(row, b); }
  if (size > 4u * k + 1u) { v.y = input_at(row, b + 1); }
  if (size > 4u * k + 2u) { v.z = input_at(row, b + 2); }
  if (size > 4u * k + 3u) { v.w = input_at(row, b + 3); }
  return v;
}

// Input values i..i+3, all known to lie inside the input row (stride 1).
fn inside4(i: u32) -> vec4<f32> {
  return vec4<f32>(input[i], input[i + 1u], input[i + 2u], input[i + 3u]);
}

// Input values i+4..i+7 when the thread has 8 positions, else zeros.
fn inside4_hi(i: u32) -> vec4<f32> {
  if (XP > 4u) { return inside4(i + 4u); }
  return vec4<f32>(0.0);
}

// The input values of positions 4..7 of a tap (zeros when the thread has 4 positions).
fn input4_hi(row: u32, ix: i32) -> vec4<f32> {
  if (XP > 4u) { return input4(row, ix + 4 * i32(STRIDE)); }
  return vec4<f32>(0.0);
}

// Writes lanes [0, lanes) of v to channel c of an output with `channels` channels (+ residual).
fn store_output(n: u32, c: u32, channels: u32, oy: u32, ox0: u32, lanes: u32, v: vec4<f32>) {
  let base = ((n * channels + c) * params.ho + oy) * params.wo + ox0;
  for (var j = 0u; j < lanes; j++) {
    var out = v[j];
    if (RES_MODE == 1u) { out += addend[base + j]; }
    output[base + j] = out;
  }
}

// Lanes [0, lanes) of channel c of the pre-residual (which has the pre-activation's cout channels); 0 past them.
fn pre_residual4(n: u32, c: u32, oy: u32, ox0: u32, lanes: u32) -> vec4<f32> {
  let base = ((n * params.cout + c) * params.ho + oy) * params.wo + ox0;
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < lanes; j++) { v[j] = addend[base + j]; }
  return v;
}

fn store_pre_activation(n: u32, c: u32, oy: u32, ox0: u32, lanes: u32, v: vec4<f32>) {
  let base = ((n * params.cout + c) * params.ho + oy) * params.wo + ox0;
  for (var j = 0u; j < lanes; j++) { pre_activation[base + j] = v[j]; }
}

// The epilogue of 4 output positions from ox0 (lanes past wo are not written): bias, pre-residual,
// cond, pre-activation, gate, residual, in the incremental sampler's order of additions, so both
// give the same sums.
fn fwd_epilogue(n: u32, co0: u32, oy: u32, ox0: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
  let last = params.cout - 1u;
  var b = vec4<f32>(0.0);
  if (HAS_BIAS) {
    b = vec4<f32>(bias[co0], bias[min(co0 + 1u, last)], bias[min(co0 + 2u, last)], bias[min(co0 + 3u, last)]);
  }
  let lanes = min(4u, params.wo - ox0);
  var v0 = a0 + b.x;
  var v1 = a1 + b.y;
  var v2 = a2 + b.z;
  var v3 = a3 + b.w;
  if (RES_MODE == 2u) {
    v0 += pre_residual4(n, co0, oy, ox0, lanes);
    if (CB > 1u) { v1 += pre_residual4(n, min(co0 + 1u, last), oy, ox0, lanes); }
    if (CB > 2u) {
      v2 += pre_residual4(n, min(co0 + 2u, last), oy, ox0, lanes);
      v3 += pre_residual4(n, min(co0 + 3u, last), oy, ox0, lanes);
    }
  }
  if (HAS_COND) {
    let cn = n * params.cout;
    v0 += cond[cn + co0];
    if (CB > 1u) { v1 += cond[cn + min(co0 + 1u, last)]; }
    if (CB > 2u) {
      v2 += cond[cn + min(co0 + 2u, last)];
      v3 += cond[cn + min(co0 + 3u, last)];
    }
  }
  if (WRITE_PRE) {
    store_pre_activation(n, co0, oy, ox0, lanes, v0);
    if (CB > 1u && co0 + 1u < params.cout) { store_pre_activation(n, co0 + 1u, oy, ox0, lanes, v1); }
    if (CB > 2u && co0 + 2u < params.cout) { store_pre_activation(n, co0 + 2u, oy, ox0, lanes, v2); }
    if (CB > 3u && co0 + 3u < params.cout) { store_pre_activation(n, co0 + 3u, oy, ox0, lanes, v3); }
  }
  if (GATE) {
    // Interleaved: channel 2c goes through tanh, 2c+1 through sigmoid (CB is even here).
    let half = params.cout / 2u;
    store_output(n, co0 / 2u, half, oy, ox0, lanes, safe_tanh(v0) * sigmoid4(v1));
    if (CB > 2u && co0 + 2u < params.cout) {
      store_output(n, co0 / 2u + 1u, half, oy, ox0, lanes, safe_tanh(v2) * sigmoid4(v3));
    }
  } else {
    store_output(n, co0, params.cout, oy, ox0, lanes, v0);
    if (CB > 1u && co0 + 1u < params.cout) { store_output(n, co0 + 1u, params.cout, oy, ox0, lanes, v1); }
    if (CB > 2u && co0 + 2u < params.cout) { store_output(n, co0 + 2u, params.cout, oy, ox0, lanes, v2); }
    if (CB > 3u && co0 + 3u < params.cout) { store_output(n, co0 + 3u, params.cout, oy, ox0, lanes, v3); }
  }
}

// The kept taps of masks A/B's centre row (kernel row CY), whose input row starts at `row`.
fn centre_row_taps(row: u32, ix0: i32, wrow: u32, ci: u32, co0: u32) {
  if (UNROLL_ROWS && CENTRE_PLAIN) {
    // Taps 0..CENTRE_TAPS-1 of the centre row (the centre itself for mask B) from one window.
    let size = CENTRE_WINDOW;
    if (CENTRE_TAPS > 0u) {
      block_row(input_window(row, ix0, 0u, size), input_window(row, ix0, 1u, size), input_window(row, ix0, 2u, size), input_window(row, ix0, 3u, size), wrow, false, CENTRE_TAPS);
    }
  } else {
    for (var kx = 0u; kx < CX; kx++) {
      let ix = ix0 + i32(kx);
      block_tap(input4(row, ix), input4_hi(row, ix), wrow + kx);
    }
    if (HAS_CENTRE) {
      let ix = ix0 + i32(CX);
      let kept = vec4<bool>(centre_kept(ci, co0), centre_kept(ci, co0 + 1u), centre_kept(ci, co0 + 2u), centre_kept(ci, co0 + 3u));
      block_centre(input4(row, ix), input4_hi(row, ix), wrow + CX, kept);
    }
  }
}

@compute @workgroup_size(64)
fn conv_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, params.ho);
  let xb = slot.x;
  let oy = slot.y;
  let cb = slot.z;
  let n = slot.w;

  let co0 = cb * CB;
  block_start(co0, params.cout - 1u, params.cin * KH * KW);

  let ox0 = xb * XP;
  let ix0 = i32(ox0 * STRIDE) - params.pad_l;
  let iy0 = i32(oy * STRIDE) - params.pad_t;
  if (MASK_AB && FULL_ROWS == 0u) {
    // Only the centre row (the horizontal stacks, 1 x KW): its bounds checked once, outside the
    // channel loop, since an `if` inside a loop halves SwiftShader's rate (docs/performance.md).
    let iy = iy0 + i32(CY);
    if (iy >= 0 && iy < i32(params.h)) {
      for (var ci = 0u; ci < params.cin; ci++) {
        centre_row_taps(((n * params.cin + ci) * params.h + u32(iy)) * params.w, ix0, ci * KH * KW + CY * KW, ci, co0);
      }
    }
  } else {
    for (var ci = 0u; ci < params.cin; ci++) {
      let plane = (n * params.cin + ci) * params.h;
      let wci = ci * KH * KW;
      for (var ky = 0u; ky < FULL_ROWS; ky++) {
        let iy = iy0 + i32(ky);
        if (!PADDED) {
          if (iy < 0 || iy >= i32(params.h)) { continue; }
        }
        let row = (plane + u32(iy)) * params.w;
        if (UNROLL_ROWS) {
          // Tap kx reads positions ix0 + kx + j: the window from ix0, shifted by kx.
          block_row(input_window(row, ix0, 0u, WINDOW), input_window(row, ix0, 1u, WINDOW), input_window(row, ix0, 2u, WINDOW), input_window(row, ix0, 3u, WINDOW), wci + ky * KW, false, KW);
          continue;
        }
        for (var kx = 0u; kx < KW; kx++) {
          let ix = ix0 + i32(kx);
          block_tap(input4(row, ix), input4_hi(row, ix), wci + ky * KW + kx);
        }
      }
      if (MASK_AB) {
        let iy = iy0 + i32(CY);
        if (iy >= 0 && iy < i32(params.h)) { centre_row_taps((plane + u32(iy)) * params.w, ix0, wci + CY * KW, ci, co0); }
      }
    }
  }

  fwd_epilogue(n, co0, oy, ox0, acc0, acc1, acc2, acc3);
  if (XP > 4u && ox0 + 4u < params.wo) { fwd_epilogue(n, co0, oy, ox0 + 4u, acc_hi0, acc_hi1, acc_hi2, acc_hi3); }
}

// ---- two output rows per thread (conv.ts's twoRows(): stride 1, KW <= 7; masks A/B only without
// colour groups): rows oy and oy + 1 meet input row iy0 + ky + 1 through kernel rows ky + 1 and ky, so
// each weight loaded feeds both rows' blocks (two_row_taps in conv_register_block.wgsl). acc_* hold
// row oy, below_* row oy + 1.

// Window k of input row iy, zeros when the row is outside the input.
fn row_window(plane: u32, iy: i32, ix0: i32, k: u32) -> vec4<f32> {
  if (!PADDED) {
    if (iy < 0 || iy >= i32(params.h)) { return vec4<f32>(0.0); }
  }
  return input_window((plane + u32(iy)) * params.w, ix0, k, WINDOW);
}

@compute @workgroup_size(64)
fn conv_forward_two_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, (params.ho - params.blank_rows + 1u) / 2u);
  let xb = slot.x;
  let oy = params.blank_rows + 2u * slot.y;
  let cb = slot.z;
  let n = slot.w;

  let co0 = cb * CB;
  block_start(co0, params.cout - 1u, params.cin * KH * KW);
  below_start();

  let ox0 = xb * XP;
  let ix0 = i32(ox0) - params.pad_l;
  let iy0 = i32(oy) - params.pad_t;
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (n * params.cin + ci) * params.h;
    let wci = ci * KH * KW;
    // Row oy's input row for ky = 0; each step's row oy + 1 input is the next step's row oy input.
    var a0 = row_window(plane, iy0, ix0, 0u);
    var a1 = row_window(plane, iy0, ix0, 1u);
    var a2 = row_window(plane, iy0, ix0, 2u);
    var a3 = row_window(plane, iy0, ix0, 3u);
    for (var ky = 0u; ky < FULL_ROWS; ky++) {
      let iy = iy0 + i32(ky) + 1;
      let b0 = row_window(plane, iy, ix0, 0u);
      let b1 = row_window(plane, iy, ix0, 1u);
      let b2 = row_window(plane, iy, ix0, 2u);
      let b3 = row_window(plane, iy, ix0, 3u);
      two_row_taps(a0, a1, a2, a3, b0, b1, b2, b3, wci + ky * KW, false, KW);
      a0 = b0;
      a1 = b1;
      a2 = b2;
      a3 = b3;
    }
    if (MASK_AB) {
      // The centre row's kept taps (conv.ts sends masks A/B here only without colour groups): a is row
      // oy's centre row, iy0 + CY; row oy + 1's is the next.
      let iy = iy0 + i32(CY) + 1;
      let b0 = row_window(plane, iy, ix0, 0u);
      let b1 = row_window(plane, iy, ix0, 1u);
      let b2 = row_window(plane, iy, ix0, 2u);
      let b3 = row_window(plane, iy, ix0, 3u);
      two_row_taps(a0, a1, a2, a3, b0, b1, b2, b3, wci + CY * KW, false, CENTRE_TAPS);
    }
  }

  if (slot.y == 0u) {
    for (var r = 0u; r < params.blank_rows; r++) {
      fwd_epilogue(n, co0, r, ox0, vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
      if (XP > 4u && ox0 + 4u < params.wo) { fwd_epilogue(n, co0, r, ox0 + 4u, vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0)); }
    }
  }
  fwd_epilogue(n, co0, oy, ox0, acc0, acc1, acc2, acc3);
  if (XP > 4u && ox0 + 4u < params.wo) { fwd_epilogue(n, co0, oy, ox0 + 4u, acc_hi0, acc_hi1, acc_hi2, acc_hi3); }
  if (oy + 1u < params.ho) {
    fwd_epilogue(n, co0, oy + 1u, ox0, below0, below1, below2, below3);
    if (XP > 4u && ox0 + 4u < params.wo) { fwd_epilogue(n, co0, oy + 1u, ox0 + 4u, below_hi0, below_hi1, below_hi2, below_hi3); }
  }
}

// ---- four output rows of 4 positions per thread (conv.ts's fourRows(): the two-row convs whose rows,
// like MNIST's 28, leave half of an 8-position block empty): the 16 FMAs per weight load of the two-row
// entry without the empty half. Rows oy..oy+3 take kernel row ky from input rows iy0+ky..iy0+ky+3, each
// a window of 4 + KW - 1 values carried from one kernel row to the next; acc_* hold row oy, below_* oy+1,
// acc_hi_* oy+2, below_hi_* oy+3 (FOUR_ROWS, XP = 4).
@compute @workgroup_size(64)
fn conv_forward_four_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, (params.ho - params.blank_rows + 3u) / 4u);
  let xb = slot.x;
  let oy = params.blank_rows + 4u * slot.y;
  let cb = slot.z;
  let n = slot.w;

  let co0 = cb * CB;
  block_start(co0, params.cout - 1u, params.cin * KH * KW);
  below_start();

  let ox0 = xb * 4u;
  let ix0 = i32(ox0) - params.pad_l;
  let iy0 = i32(oy) - params.pad_t;
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (n * params.cin + ci) * params.h;
    let wci = ci * KH * KW;
    var r0a = row_window(plane, iy0, ix0, 0u);
    var r0b = row_window(plane, iy0, ix0, 1u);
    var r0c = row_window(plane, iy0, ix0, 2u);
    var r1a = row_window(plane, iy0 + 1, ix0, 0u);
    var r1b = row_window(plane, iy0 + 1, ix0, 1u);
    var r1c = row_window(plane, iy0 + 1, ix0, 2u);
    var r2a = row_window(plane, iy0 + 2, ix0, 0u);
    var r2b = row_window(plane, iy0 + 2, ix0, 1u);
    var r2c = row_window(plane, iy0 + 2, ix0, 2u);
    for (var ky = 0u; ky < FULL_ROWS; ky++) {
      let iy = iy0 + i32(ky) + 3;
      let r3a = row_window(plane, iy, ix0, 0u);
      let r3b = row_window(plane, iy, ix0, 1u);
      let r3c = row_window(plane, iy, ix0, 2u);
      four_row_taps(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wci + ky * KW, KW);
      r0a = r1a;
      r0b = r1b;
      r0c = r1c;
      r1a = r2a;
      r1b = r2b;
      r1c = r2c;
      r2a = r3a;
      r2b = r3b;
      r2c = r3c;
    }
    if (MASK_AB) {
      // The centre row's kept taps: r0 is row oy's centre row, iy0 + CY.
      let iy = iy0 + i32(CY) + 3;
      let r3a = row_window(plane, iy, ix0, 0u);
      let r3b = row_window(plane, iy, ix0, 1u);
      let r3c = row_window(plane, iy, ix0, 2u);
      four_row_taps(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wci + CY * KW, CENTRE_TAPS);
    }
  }

  if (slot.y == 0u) {
    for (var r = 0u; r < params.blank_rows; r++) {
      fwd_epilogue(n, co0, r, ox0, vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    }
  }
  fwd_epilogue(n, co0, oy, ox0, acc0, acc1, acc2, acc3);
  if (oy + 1u < params.ho) { fwd_epilogue(n, co0, oy + 1u, ox0, below0, below1, below2, below3); }
  if (oy + 2u < params.ho) { fwd_epilogue(n, co0, oy + 2u, ox0, acc_hi0, acc_hi1, acc_hi2, acc_hi3); }
  if (oy + 3u < params.ho) { fwd_epilogue(n, co0, oy + 3u, ox0, below_hi0, below_hi1, below_hi2, below_hi3); }
}

// Unmasked 1x1 kernels at stride 1 (conv.ts's pointwise()): one tap per input channel, two input
// channels a step, 4 or 8 output channels per thread (EIGHT_CHANNELS), in an entry of its own so the
// general kernel's code stays as it is. SwiftShader pays for every loop iteration; four input channels
// a step made its compiler run for minutes.
@compute @workgroup_size(64)
fn conv_forward_1x1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let slot = block_slot(t, params.ho);
  let xb = slot.x;
  let oy = slot.y;
  let cb = slot.z;
  let n = slot.w;

  let co0 = cb * select(CB, 8u, EIGHT_CHANNELS);
  block_start(co0, params.cout - 1u, params.cin);
  if (EIGHT_CHANNELS) { upper_start(co0, params.cout - 1u, params.cin); }
  let ox0 = xb * XP;
  let ix0 = i32(ox0) - params.pad_l;
  let iy0 = i32(oy) - params.pad_t;
  if (iy0 >= 0 && iy0 < i32(params.h)) {
    let hw = params.h * params.w;
    let row0 = (n * params.cin * params.h + u32(iy0)) * params.w;
    let pairs = params.cin / 2u;
    if (ix0 >= 0 && ix0 + i32(XP) <= i32(params.w)) {
      // Every position of the block lies inside the input row: plain loads, without the bounds
      // selects of input4 (they cost a 1x1 conv a third of its time on SwiftShader).
      let i0 = row0 + u32(ix0);
      for (var q = 0u; q < pairs; q++) {
        let ci = 2u * q;
        let i = i0 + ci * hw;
        pointwise_tap(inside4(i), inside4_hi(i), ci);
        pointwise_tap(inside4(i + hw), inside4_hi(i + hw), ci + 1u);
      }
      if (params.cin % 2u == 1u) {
        let ci = params.cin - 1u;
        pointwise_tap(inside4(i0 + ci * hw), inside4_hi(i0 + ci * hw), ci);
      }
    } else {
      for (var q = 0u; q < pairs; q++) {
        let ci = 2u * q;
        let row = row0 + ci * hw;
        pointwise_tap(input4(row, ix0), input4_hi(row, ix0), ci);
        pointwise_tap(input4(row + hw, ix0), input4_hi(row + hw, ix0), ci + 1u);
      }
      if (params.cin % 2u == 1u) {
        let ci = params.cin - 1u;
        pointwise_tap(input4(row0 + ci * hw, ix0), input4_hi(row0 + ci * hw, ix0), ci);
      }
    }
  }
  fwd_epilogue(n, co0, oy, ox0, acc0, acc1, acc2, acc3);
  if (XP > 4u && ox0 + 4u < params.wo) { fwd_epilogue(n, co0, oy, ox0 + 4u, acc_hi0, acc_hi1, acc_hi2, acc_hi3); }
  if (EIGHT_CHANNELS && co0 + 4u < params.cout) {
    fwd_epilogue(n, co0 + 4u, oy, ox0, acc4, acc5, acc6, acc7);
    if (XP > 4u && ox0 + 4u < params.wo) { fwd_epilogue(n, co0 + 4u, oy, ox0 + 4u, acc_hi4, acc_hi5, acc_hi6, acc_hi7); }
  }
}

// ---- the zero-padded copy of a conv's input that PADDED entries read: source [n, cin, h, w] with
// pad_t rows and pad_l columns before it (negative: cropped) in a target [n, cin, rows, chunk_rows].
// A thread writes one target row, so the index arithmetic is paid once per row.

@group(0) @binding(1) var<storage, read> pad_source: array<f32>;
@group(0) @binding(2) var<storage, read_write> pad_target: array<f32>;

@compute @workgroup_size(64)
fn conv_pad_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let width = params.chunk_rows;
  let iy = i32(t % params.rows) - params.pad_t;
  let out = t * width;
  if (iy < 0 || iy >= i32(params.h)) {
    for (var col = 0u; col < width; col++) { pad_target[out + col] = 0.0; }
    return;
  }
  let source = ((t / params.rows) * params.h + u32(iy)) * params.w;
  for (var col = 0u; col < width; col++) {
    let ix = i32(col) - params.pad_l;
    let inside = ix >= 0 && ix < i32(params.w);
    pad_target[out + col] = select(0.0, pad_source[source + u32(select(0, ix, inside))], inside);
  }
}

// ---- gated activation over interleaved channels, optionally on a band of rows and with z's terms:
// gate_output[n, c, r, i] = tanh(gate_input[n, 2c, r0 + r, i] + gate_cond[n, 2c])
//                           * sigmoid(gate_input[n, 2c+1, r0 + r, i] + gate_cond[n, 2c+1])
// Params: n, cin = C (output channels), h = rows of the input, w = row length (trailing axes
// flattened), ho = rows of the output, pad_t = r0, threads = planes (n * C). Workgroups: x over a
// plane's positions, y (z past the limit) over planes; a band of rows is contiguous in its plane, so no
// index needs a division.

@group(0) @binding(1) var<storage, read> gate_input: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate_output: array<f32>;
@group(0) @binding(3) var<storage, read> gate_cond: array<f32>;

@compute @workgroup_size(64)
fn gate_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x; // position in the band
  let r = gid.y + gid.z * nwg.y; // n * C + c
  let band = params.ho * params.w;
  if (k >= band || r >= params.threads) { return; }
  let c2 = 2u * r; // n * 2C + 2c
  let plane = params.h * params.w;
  let a = c2 * plane + u32(params.pad_t) * params.w + k;
  var t = gate_input[a];
  var s = gate_input[a + plane];
  if (HAS_COND) {
    t += gate_cond[c2];
    s += gate_cond[c2 + 1u];
  }
  let v = safe_tanh(vec4<f32>(t)) * sigmoid4(vec4<f32>(s));
  gate_output[r * band + k] = v.x;
}

