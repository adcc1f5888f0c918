// The gradients w.r.t. the weight and the bias (conv_common.wgsl goes in front).
//   conv_backward_weight      partial weight gradients over chunks of N*Ho rows (split-K),
//                             [S, Cout, Cin, KH, KW], masked taps as exact zeros
//   conv_backward_weight_1x1  the same for 1x1 kernels
//   conv_grad_sums            the second pass of split-K (adds the S partials) and, in the same
//                             dispatch, per-channel sums: the bias gradient, and per image the cond
//                             gradient (also the stand-alone gate's cond and convTranspose2d's bias)
// convTranspose2d's weight gradient is conv_backward_weight with the roles of input and grad_out swapped.

/** Input channels per thread in conv_backward_weight (1 or 2). */
override WCI: u32 = 1u;

// ---- weight gradient (split-K): grad_weight_partials[s, co, ci, ky, kx] = sum over rows (n, oy) of
// chunk s and all ox of grad_out[n, co, oy, ox] * input[n, ci, oy*S + ky - pad_t, ox*S + kx - pad_l].
// A thread owns CB output channels (vec4 lanes) x all KW columns (acc_k0..acc_k6, and acc2_k0..acc2_k6
// for a second input channel) of one kernel row ky of WCI (1 or 2) input channels and one chunk; along
// a row the KW inputs slide (in_k0..in_k6, in2_k0..in2_k6), so each output column costs
// CB + WCI * STRIDE loads for CB * KW * WCI FMAs. Params: xblocks = input-channel blocks.

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> grad_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_weight_partials: array<f32>;

// The accumulators of kernel columns 0..6 (the first input channel).
var<private> acc_k0: vec4<f32>;
var<private> acc_k1: vec4<f32>;
var<private> acc_k2: vec4<f32>;
var<private> acc_k3: vec4<f32>;
var<private> acc_k4: vec4<f32>;
var<private> acc_k5: vec4<f32>;
var<private> acc_k6: vec4<f32>;

fn input_at(row: u32, ix: i32) -> f32 {
  let ok = ix >= 0 && ix < i32(params.w);
  return select(0.0, input[row + u32(select(0, ix, ok))], ok);
}

// The inputs input[row + ix + k], k < KW, under the current output column (a sliding window), and
// in2_k0..in2_k6 the same for the thread's second input channel (WCI = 2).
var<private> in_k0: f32;
var<private> in_k1: f32;
var<private> in_k2: f32;
var<private> in_k3: f32;
var<private> in_k4: f32;
var<private> in_k5: f32;
var<private> in_k6: f32;
var<private> in2_k0: f32;
var<private> in2_k1: f32;
var<private> in2_k2: f32;
var<private> in2_k3: f32;
var<private> in2_k4: f32;
var<private> in2_k5: f32;
var<private> in2_k6: f32;
// The second input channel's accumulators (WCI = 2).
var<private> acc2_k0: vec4<f32>;
var<private> acc2_k1: vec4<f32>;
var<private> acc2_k2: vec4<f32>;
var<private> acc2_k3: vec4<f32>;
var<private> acc2_k4: vec4<f32>;
var<private> acc2_k5: vec4<f32>;
var<private> acc2_k6: vec4<f32>;

// Loads column k of both windows from rows row and row1 at ix + k.
fn load_window(k: u32, row: u32, row1: u32, ix: i32) {
  let v = input_at(row, ix + i32(k));
  var v1 = 0.0;
  if (WCI > 1u) { v1 = input_at(row1, ix + i32(k)); }
  switch k {
    case 0u: { in_k0 = v; in2_k0 = v1; }
    case 1u: { in_k1 = v; in2_k1 = v1; }
    case 2u: { in_k2 = v; in2_k2 = v1; }
    case 3u: { in_k3 = v; in2_k3 = v1; }
    case 4u: { in_k4 = v; in2_k4 = v1; }
    case 5u: { in_k5 = v; in2_k5 = v1; }
    default: { in_k6 = v; in2_k6 = v1; }
  }
}

// Moves the windows to start at ix (STRIDE past the last start): shift, then load the STRIDE new ends.
fn slide_window(row: u32, row1: u32, ix: i32) {
  if (STRIDE == 1u) {
    in_k0 = in_k1; in_k1 = in_k2; in_k2 = in_k3; in_k3 = in_k4; in_k4 = in_k5; in_k5 = in_k6;
    in2_k0 = in2_k1; in2_k1 = in2_k2; in2_k2 = in2_k3; in2_k3 = in2_k4; in2_k4 = in2_k5; in2_k5 = in2_k6;
  } else {
    in_k0 = in_k2; in_k1 = in_k3; in_k2 = in_k4; in_k3 = in_k5; in_k4 = in_k6;
    in2_k0 = in2_k2; in2_k1 = in2_k3; in2_k2 = in2_k4; in2_k3 = in2_k5; in2_k4 = in2_k6;
  }
  // Constant columns, so load_window's switch folds away (a loop index made it a per-lane branch).
  load_window(KW - 1u, row, row1, ix);
  if (STRIDE > 1u && KW > 1u) { load_window(KW - 2u, row, row1, ix); }
  if (STRIDE > 2u) {
    for (var i = 2u; i < STRIDE; i++) {
      if (KW > i) { load_window(KW - 1u - i, row, row1, ix); }
    }
  }
}

fn acc2_k(kx: u32) -> vec4<f32> {
  switch kx {
    case 0u: { return acc2_k0; }
    case 1u: { return acc2_k1; }
    case 2u: { return acc2_k2; }
    case 3u: { return acc2_k3; }
    case 4u: { return acc2_k4; }
    case 5u: { return acc2_k5; }
    default: { return acc2_k6; }
  }
}

// Writes one filter row (ci, ky) of the block's partial weight gradient: masked taps and disallowed centre pairs
// as exact zeros; from row 0 also the rows no thread visits.
fn store_weight_row(split: u32, co0: u32, ci: u32, ky: u32, ncols: u32, second: bool) {
  let taps = KH * KW;
  for (var j = 0u; j < CB; j++) {
    let co = co0 + j;
    if (co >= params.cout) { break; }
    let fbase = ((split * params.cout + co) * params.cin + ci) * taps;
    let base = fbase + ky * KW;
    for (var kx = 0u; kx < KW; kx++) {
      var keep = kx < ncols;
      if (MASK_AB && ky == CY && kx == CX) { keep = keep && centre_kept(ci, co); }
      let v = select(acc_k(kx)[j], acc2_k(kx)[j], second);
      grad_weight_partials[base + kx] = select(0.0, v, keep);
    }
    if (ky == 0u) {
      for (var i = KV * KW; i < taps; i++) { grad_weight_partials[fbase + i] = 0.0; }
    }
  }
}

fn acc_k(kx: u32) -> vec4<f32> {
  switch kx {
    case 0u: { return acc_k0; }
    case 1u: { return acc_k1; }
    case 2u: { return acc_k2; }
    case 3u: { return acc_k3; }
    case 4u: { return acc_k4; }
    case 5u: { return acc_k5; }
    default: { return acc_k6; }
  }
}

/** Stride 1, KW <= 7: the output row in blocks of 4 columns (row_blocks) instead of one column a step. */
override ROW_BLOCKS: bool = STRIDE == 1u && KW <= 7u;

// grad_out[row + ox + j], j < 4, with zeros past the row's end (so those columns add nothing).
fn grad4_at(row: u32, ox: u32) -> vec4<f32> {
  let last = params.wo - 1u;
  let ok = vec4<u32>(ox, ox + 1u, ox + 2u, ox + 3u) < vec4<u32>(params.wo);
  let v = vec4<f32>(grad_out[row + min(ox, last)], grad_out[row + min(ox + 1u, last)], grad_out[row + min(ox + 2u, last)], grad_out[row + min(ox + 3u, last)]);
  return select(vec4<f32>(0.0), v, ok);
}

fn input4_at(row: u32, ix: i32) -> vec4<f32> {
  return vec4<f32>(input_at(row, ix), input_at(row, ix + 1), input_at(row, ix + 2), input_at(row, ix + 3));
}

// Kernel column k's sums over 4 output columns of CB channels (g0..g3) against the input window x0..x2
// (the inputs from the block's first column on, shifted by k).
fn col_sums(g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>, x: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(dot(g0, x), dot(g1, x), dot(g2, x), dot(g3, x));
}

// The sums of the KW kernel columns over 4 output columns (s0..s6; past KW zero).
struct ColumnSums { s0: vec4<f32>, s1: vec4<f32>, s2: vec4<f32>, s3: vec4<f32>, s4: vec4<f32>, s5: vec4<f32>, s6: vec4<f32> }

// Kernel columns' sums for the input row `row` from column ix on against the gradients g0..g3 of CB
// channels at 4 output columns: the inputs are loaded once as a window of KW + 3 values, and kernel
// column k takes values k..k+3 of it.
fn column_sums(row: u32, ix: i32, g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>) -> ColumnSums {
  let a = input4_at(row, ix);
  var b = vec4<f32>(0.0);
  var d = vec4<f32>(0.0);
  if (KW > 1u) { b = input4_at(row, ix + 4); }
  if (KW > 5u) { d = input4_at(row, ix + 8); }
  var r: ColumnSums;
  r.s0 = col_sums(g0, g1, g2, g3, a);
  if (KW > 1u) { r.s1 = col_sums(g0, g1, g2, g3, vec4<f32>(a.yzw, b.x)); }
  if (KW > 2u) { r.s2 = col_sums(g0, g1, g2, g3, vec4<f32>(a.zw, b.xy)); }
  if (KW > 3u) { r.s3 = col_sums(g0, g1, g2, g3, vec4<f32>(a.w, b.xyz)); }
  if (KW > 4u) { r.s4 = col_sums(g0, g1, g2, g3, b); }
  if (KW > 5u) { r.s5 = col_sums(g0, g1, g2, g3, vec4<f32>(b.yzw, d.x)); }
  if (KW > 6u) { r.s6 = col_sums(g0, g1, g2, g3, vec4<f32>(b.zw, d.xy)); }
  return r;
}

// One row pair (input rows, gradient rows) at stride 1, 4 output columns a step (column_sums). A loop
// step a column, with its sliding window in private variables, costs SwiftShader far more
// (docs/performance.md). Adds into acc_k* (and acc2_k* for the second input channel).
fn row_blocks(in_row: u32, in_row1: u32, grad_row0: u32, grad_row1: u32, grad_row2: u32, grad_row3: u32) {
  for (var ox = 0u; ox < params.wo; ox += 4u) {
    let g0 = grad4_at(grad_row0, ox);
    var g1 = vec4<f32>(0.0);
    var g2 = vec4<f32>(0.0);
    var g3 = vec4<f32>(0.0);
    if (CB > 1u) { g1 = grad4_at(grad_row1, ox); }
    if (CB > 2u) {
      g2 = grad4_at(grad_row2, ox);
      g3 = grad4_at(grad_row3, ox);
    }
    let ix = i32(ox) - params.pad_l;
    let p = column_sums(in_row, ix, g0, g1, g2, g3);
    acc_k0 += p.s0; acc_k1 += p.s1; acc_k2 += p.s2; acc_k3 += p.s3; acc_k4 += p.s4; acc_k5 += p.s5; acc_k6 += p.s6;
    if (WCI > 1u) {
      let q = column_sums(in_row1, ix, g0, g1, g2, g3);
      acc2_k0 += q.s0; acc2_k1 += q.s1; acc2_k2 += q.s2; acc2_k3 += q.s3; acc2_k4 += q.s4; acc2_k5 += q.s5; acc2_k6 += q.s6;
    }
  }
}

@compute @workgroup_size(64)
fn conv_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  // Threads only for the kernel rows a mask keeps (KV of KH), so no SIMD lane idles on a masked row.
  let ky = t % KV;
  var r = t / KV;
  // WCI input channels per thread (xblocks = their blocks): each gradient load then feeds WCI * KW FMAs.
  let ci = (r % params.xblocks) * WCI;
  let ci1 = min(ci + 1u, params.cin - 1u);
  r = r / params.xblocks;
  let cb = r % params.cblocks;
  let split = r / params.cblocks;

  let co0 = cb * CB;
  let last = params.cout - 1u;
  let c1 = min(co0 + 1u, last);
  let c2 = min(co0 + 2u, last);
  let c3 = min(co0 + 3u, last);
  acc_k0 = vec4<f32>(0.0);
  acc_k1 = vec4<f32>(0.0);
  acc_k2 = vec4<f32>(0.0);
  acc_k3 = vec4<f32>(0.0);
  acc_k4 = vec4<f32>(0.0);
  acc_k5 = vec4<f32>(0.0);
  acc_k6 = vec4<f32>(0.0);
  acc2_k0 = vec4<f32>(0.0);
  acc2_k1 = vec4<f32>(0.0);
  acc2_k2 = vec4<f32>(0.0);
  acc2_k3 = vec4<f32>(0.0);
  acc2_k4 = vec4<f32>(0.0);
  acc2_k5 = vec4<f32>(0.0);
  acc2_k6 = vec4<f32>(0.0);

  // Columns of this kernel row that the mask keeps (0: the row is masked out, never visited).
  var ncols = select(0u, KW, ky < FULL_ROWS);
  if (MASK_AB && ky == CY) { ncols = CX + select(0u, 1u, HAS_CENTRE); }

  let s = i32(STRIDE);
  let r0 = split * params.chunk_rows;
  let r1 = min(params.rows, r0 + params.chunk_rows);
  if (ncols > 0u) {
    for (var rr = r0; rr < r1; rr++) {
      let n = rr / params.ho;
      let oy = rr % params.ho;
      let iy = i32(oy * STRIDE + ky) - params.pad_t;
      if (iy < 0 || iy >= i32(params.h)) { continue; }
      let in_row = ((n * params.cin + ci) * params.h + u32(iy)) * params.w;
      let in_row1 = in_row + (ci1 - ci) * params.h * params.w;
      let gplane = n * params.cout;
      let grad_row0 = ((gplane + co0) * params.ho + oy) * params.wo;
      let grad_row1 = ((gplane + c1) * params.ho + oy) * params.wo;
      let grad_row2 = ((gplane + c2) * params.ho + oy) * params.wo;
      let grad_row3 = ((gplane + c3) * params.ho + oy) * params.wo;
      if (ROW_BLOCKS) {
        row_blocks(in_row, in_row1, grad_row0, grad_row1, grad_row2, grad_row3);
        continue;
      }
      // The KW inputs of output ox slide along the row: load them once, then STRIDE new ones per ox.
      var ix = -params.pad_l;
      for (var k = 0u; k < KW; k++) { load_window(k, in_row, in_row1, ix); }
      for (var ox = 0u; ox < params.wo; ox++) {
        var grad4 = vec4<f32>(grad_out[grad_row0 + ox], 0.0, 0.0, 0.0);
        if (CB > 1u) { grad4.y = grad_out[grad_row1 + ox]; }
        if (CB > 2u) {
          grad4.z = grad_out[grad_row2 + ox];
          grad4.w = grad_out[grad_row3 + ox];
        }
        // All KW columns, also past ncols on a mask's centre row: those sums are dropped at the
        // store, and the loop body stays free of per-lane conditions.
        acc_k0 += grad4 * in_k0;
        if (KW > 1u) { acc_k1 += grad4 * in_k1; }
        if (KW > 2u) { acc_k2 += grad4 * in_k2; }
        if (KW > 3u) { acc_k3 += grad4 * in_k3; }
        if (KW > 4u) { acc_k4 += grad4 * in_k4; }
        if (KW > 5u) { acc_k5 += grad4 * in_k5; }
        if (KW > 6u) { acc_k6 += grad4 * in_k6; }
        if (WCI > 1u) {
          acc2_k0 += grad4 * in2_k0;
          if (KW > 1u) { acc2_k1 += grad4 * in2_k1; }
          if (KW > 2u) { acc2_k2 += grad4 * in2_k2; }
          if (KW > 3u) { acc2_k3 += grad4 * in2_k3; }
          if (KW > 4u) { acc2_k4 += grad4 * in2_k4; }
          if (KW > 5u) { acc2_k5 += grad4 * in2_k5; }
          if (KW > 6u) { acc2_k6 += grad4 * in2_k6; }
        }
        ix += s;
        slide_window(in_row, in_row1, ix);
      }
    }
  }

  store_weight_row(split, co0, ci, ky, ncols, false);
  if (WCI > 1u && ci + 1u < params.cin) { store_weight_row(split, co0, ci + 1u, ky, ncols, true); }
}

// ---- backward weight for 1x1 kernels: one tap, so a thread owns CB output channels (vec4 lanes)
// x 4 input channels (acc_k0..acc_k3 hold input channels here) instead, and each loaded gradient feeds
// 4 input channels.
// Params as conv_backward_weight, with xblocks = input-channel blocks of 4.

@compute @workgroup_size(64)
fn conv_backward_weight_1x1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.threads) { return; }
  let cib = t % params.xblocks;
  let r = t / params.xblocks;
  let cb = r % params.cblocks;
  let split = r / params.cblocks;

  let co0 = cb * CB;
  let last = params.cout - 1u;
  let c1 = min(co0 + 1u, last);
  let c2 = min(co0 + 2u, last);
  let c3 = min(co0 + 3u, last);
  let ci0 = cib * 4u;
  let lastci = params.cin - 1u;
  let i1 = min(ci0 + 1u, lastci);
  let i2 = min(ci0 + 2u, lastci);
  let i3 = min(ci0 + 3u, lastci);
  acc_k0 = vec4<f32>(0.0);
  acc_k1 = vec4<f32>(0.0);
  acc_k2 = vec4<f32>(0.0);
  acc_k3 = vec4<f32>(0.0);

  // Mask A without colour groups drops the only tap: nothing to visit.
  let visits = !MASK_AB || HAS_CENTRE;
  let s = i32(STRIDE);
  let r0 = split * params.chunk_rows;
  let r1 = min(params.rows, r0 + params.chunk_rows);
  let plane = params.h * params.w;
  if (visits) {
    for (var rr = r0; rr < r1; rr++) {
      let n = rr / params.ho;
      let oy = rr % params.ho;
      let iy = i32(oy * STRIDE) - params.pad_t;
      if (iy < 0 || iy >= i32(params.h)) { continue; }
      let in_row0 = ((n * params.cin + ci0) * params.h + u32(iy)) * params.w;
      let in_row1 = in_row0 + (i1 - ci0) * plane;
      let in_row2 = in_row0 + (i2 - ci0) * plane;
      let in_row3 = in_row0 + (i3 - ci0) * plane;
      let gplane = n * params.cout;
      let grad_row0 = ((gplane + co0) * params.ho + oy) * params.wo;
      let grad_row1 = ((gplane + c1) * params.ho + oy) * params.wo;
      let grad_row2 = ((gplane + c2) * params.ho + oy) * params.wo;
      let grad_row3 = ((gplane + c3) * params.ho + oy) * params.wo;
      for (var ox = 0u; ox < params.wo; ox++) {
        let ix = i32(ox) * s - params.pad_l;
        if (ix < 0 || ix >= i32(params.w)) { continue; }
        var grad4 = vec4<f32>(grad_out[grad_row0 + ox], 0.0, 0.0, 0.0);
        if (CB > 1u) { grad4.y = grad_out[grad_row1 + ox]; }
        if (CB > 2u) {
          grad4.z = grad_out[grad_row2 + ox];
          grad4.w = grad_out[grad_row3 + ox];
        }
        let u = u32(ix);
        acc_k0 += grad4 * input[in_row0 + u];
        acc_k1 += grad4 * input[in_row1 + u];
        acc_k2 += grad4 * input[in_row2 + u];
        acc_k3 += grad4 * input[in_row3 + u];
      }
    }
  }

  for (var j = 0u; j < CB; j++) {
    let co = co0 + j;
    if (co >= params.cout) { break; }
    for (var c = 0u; c < 4u; c++) {
      let ci = ci0 + c;
      if (ci >= params.cin) { break; }
      let keep = visits && (!MASK_AB || centre_kept(ci, co));
      grad_weight_partials[(split * params.cout + co) * params.cin + ci] = select(0.0, acc_k(c)[j], keep);
    }
  }
}

// ---- the second pass of split-K and the per-channel sums of the bias and cond gradients, in one
// dispatch (either part may be empty):
// workgroups [0, params.cblocks): grad_weight[i] = sum over s < splits (params.rows) of
//   partials[s * count + i], count = params.threads, one thread per element, no barriers;
// workgroups [params.cblocks, params.cblocks + C): workgroup c reads the N planes summands[n, c, :]
//   (params: n, cin = C, h = plane size) and writes image_sums[n, c] (PER_IMAGE, the cond gradient)
//   and sums[c] (TOTAL, the bias gradient). SUM_Q threads share a plane (64 / SUM_Q planes per pass,
//   a pass per 64 / SUM_Q images), each reading vec4 chunks q, q + SUM_Q, ..., so a batch of 32 keeps
//   all 64 threads reading; a tree in workgroup memory adds a plane's SUM_Q partials, and a last tree
//   adds the images. C workgroups keep a CPU adapter's cores busy for C >= cores, as the old
//   thread-per-plane pass (then a thread-per-channel pass, two more dispatches) did.

/** Also write the per-image sums [N, C]. */
override PER_IMAGE: bool = false;
/** Also write the totals over the batch [C]. */
override TOTAL: bool = true;
/** Threads per plane: a power of two dividing 64. */
override SUM_Q: u32 = 2u;

@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_weight: array<f32>;
@group(0) @binding(3) var<storage, read> summands: array<f32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;
@group(0) @binding(5) var<storage, read_write> image_sums: array<f32>;

var<workgroup> sum_tree: array<f32, 64>;

// Adds sum_tree[t + width] into sum_tree[t] for lanes of a segment of 2 * width, halving width down
// to 1 (every thread of the workgroup calls it: it holds barriers).
fn sum_tree_reduce(t: u32, first: u32) {
  for (var width = first; width > 0u; width /= 2u) {
    workgroupBarrier();
    if (t % (2u * width) < width) { sum_tree[t] += sum_tree[t + width]; }
  }
  workgroupBarrier();
}

// Channel c's sums by the whole workgroup (thread t).
fn channel_sums(t: u32, c: u32) {
  let live = c < params.cin;
  let q = t % SUM_Q;
  let per_pass = 64u / SUM_Q;
  let plane = params.h;
  let chunks = plane / 4u;
  var total = 0.0;
  let passes = (params.n + per_pass - 1u) / per_pass;
  for (var p = 0u; p < passes; p++) {
    let n = p * per_pass + t / SUM_Q;
    let mine = live && n < params.n;
    // Four partial sums per thread: independent adds, and a shorter rounding chain.
    var acc = vec4<f32>(0.0);
    if (mine) {
      let base = (n * params.cin + c) * plane;
      for (var j = q; j < chunks; j += SUM_Q) {
        let i = base + 4u * j;
        acc += vec4<f32>(summands[i], summands[i + 1u], summands[i + 2u], summands[i + 3u]);
      }
      for (var i = chunks * 4u + q; i < plane; i += SUM_Q) { acc.x += summands[base + i]; }
    }
    var s = (acc.x + acc.y) + (acc.z + acc.w);
    if (SUM_Q > 1u) {
      sum_tree[t] = s;
      sum_tree_reduce(t, SUM_Q / 2u);
      s = sum_tree[t];
      // Every thread has read its slot before the next pass writes it.
      workgroupBarrier();
    }
    if (mine && q == 0u) {
      if (PER_IMAGE) { image_sums[n * params.cin + c] = s; }
      total += s;
    }
  }
  if (TOTAL) {
    sum_tree[t] = total;
    sum_tree_reduce(t, 32u);
    if (t == 0u && live) { sums[c] = sum_tree[0]; }
  }
}

@compute @workgroup_size(64)
fn conv_grad_sums(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg < params.cblocks) {
    let i = wg * 64u + t;
    if (i < params.threads) {
      var total = 0.0;
      for (var s = 0u; s < params.rows; s++) { total += partials[s * params.threads + i]; }
      grad_weight[i] = total;
    }
    return;
  }
  channel_sums(t, wg - params.cblocks);
}
