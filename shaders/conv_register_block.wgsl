// The register block that conv_forward and conv_backward_input share (src/engine/ops/conv.ts puts
// conv_common.wgsl in front of this file and the direction's file after it; that file declares
// `weight`). A thread owns CB (1, 2 or 4) channels x XP (4 or 8) positions along x: output channels
// in the forward, input channels in the input gradient. acc_j holds channel j of the block at
// positions 0..3, acc_hi_j at positions 4..7 when XP = 8, so each weight load feeds XP FMAs;
// filter_j is the offset of channel j's weights for the thread's current tap row.

/** Positions per thread along x (4 or 8). */
override XP: u32 = 4u;

var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;
var<private> acc_hi0: vec4<f32>;
var<private> acc_hi1: vec4<f32>;
var<private> acc_hi2: vec4<f32>;
var<private> acc_hi3: vec4<f32>;
var<private> filter0: u32;
var<private> filter1: u32;
var<private> filter2: u32;
var<private> filter3: u32;

// The thread's block in the grid: (x block, row, channel block, image), x blocks fastest, for `rows`
// rows (the forward's output rows, the input gradient's input rows).
fn block_slot(t: u32, rows: u32) -> vec4<u32> {
  var r = t / params.xblocks;
  let row = r % rows;
  r = r / rows;
  return vec4<u32>(t % params.xblocks, row, r % params.cblocks, r / params.cblocks);
}

// Points the block at channels c0..c0+3, whose filters are `size` apart, and zeroes it. Channels past
// `last` (a partial last block) read the last channel's filter and are never stored.
fn block_start(c0: u32, last: u32, size: u32) {
  filter0 = c0 * size;
  filter1 = min(c0 + 1u, last) * size;
  filter2 = min(c0 + 2u, last) * size;
  filter3 = min(c0 + 3u, last) * size;
  acc0 = vec4<f32>(0.0);
  acc1 = vec4<f32>(0.0);
  acc2 = vec4<f32>(0.0);
  acc3 = vec4<f32>(0.0);
  acc_hi0 = vec4<f32>(0.0);
  acc_hi1 = vec4<f32>(0.0);
  acc_hi2 = vec4<f32>(0.0);
  acc_hi3 = vec4<f32>(0.0);
}

// One tap (weight offset wk within each filter) for every channel of the block: lo holds the values
// at positions 0..3, hi at positions 4..7 (zeros when XP = 4).
fn block_tap(lo: vec4<f32>, hi: vec4<f32>, wk: u32) {
  let w0 = weight[filter0 + wk];
  acc0 += w0 * lo;
  if (XP > 4u) { acc_hi0 += w0 * hi; }
  if (CB > 1u) {
    let w1 = weight[filter1 + wk];
    acc1 += w1 * lo;
    if (XP > 4u) { acc_hi1 += w1 * hi; }
  }
  if (CB > 2u) {
    let w2 = weight[filter2 + wk];
    let w3 = weight[filter3 + wk];
    acc2 += w2 * lo;
    acc3 += w3 * lo;
    if (XP > 4u) {
      acc_hi2 += w2 * hi;
      acc_hi3 += w3 * hi;
    }
  }
}

// ---- eight channels per thread (the 1x1 forward when EIGHT_CHANNELS): channels c0+4..c0+7 of the
// block in acc4..acc7 (positions 0..3) and acc_hi4..acc_hi7 (4..7), so each input value loaded feeds
// 8 channels' FMAs where it fed 4. A 1x1 conv loads an input value per tap per position, which made it
// the slowest conv per FLOP on SwiftShader (docs/performance.md).

/** The thread owns channels c0..c0+7 (CB = 4, block_start and upper_start); only conv_forward_1x1 reads it. */
override EIGHT_CHANNELS: bool = false;

var<private> acc4: vec4<f32>;
var<private> acc5: vec4<f32>;
var<private> acc6: vec4<f32>;
var<private> acc7: vec4<f32>;
var<private> acc_hi4: vec4<f32>;
var<private> acc_hi5: vec4<f32>;
var<private> acc_hi6: vec4<f32>;
var<private> acc_hi7: vec4<f32>;
var<private> filter4: u32;
var<private> filter5: u32;
var<private> filter6: u32;
var<private> filter7: u32;

// As block_start, for channels c0+4..c0+7.
fn upper_start(c0: u32, last: u32, size: u32) {
  filter4 = min(c0 + 4u, last) * size;
  filter5 = min(c0 + 5u, last) * size;
  filter6 = min(c0 + 6u, last) * size;
  filter7 = min(c0 + 7u, last) * size;
  acc4 = vec4<f32>(0.0);
  acc5 = vec4<f32>(0.0);
  acc6 = vec4<f32>(0.0);
  acc7 = vec4<f32>(0.0);
  acc_hi4 = vec4<f32>(0.0);
  acc_hi5 = vec4<f32>(0.0);
  acc_hi6 = vec4<f32>(0.0);
  acc_hi7 = vec4<f32>(0.0);
}

// block_tap's tap for channels c0+4..c0+7.
fn upper_tap(lo: vec4<f32>, hi: vec4<f32>, wk: u32) {
  let w4 = weight[filter4 + wk];
  let w5 = weight[filter5 + wk];
  let w6 = weight[filter6 + wk];
  let w7 = weight[filter7 + wk];
  acc4 += w4 * lo;
  acc5 += w5 * lo;
  acc6 += w6 * lo;
  acc7 += w7 * lo;
  if (XP > 4u) {
    acc_hi4 += w4 * hi;
    acc_hi5 += w5 * hi;
    acc_hi6 += w6 * hi;
    acc_hi7 += w7 * hi;
  }
}

// One tap of the 1x1 forward: channels c0..c0+3, and c0+4..c0+7 when EIGHT_CHANNELS.
fn pointwise_tap(lo: vec4<f32>, hi: vec4<f32>, wk: u32) {
  block_tap(lo, hi, wk);
  if (EIGHT_CHANNELS) { upper_tap(lo, hi, wk); }
}

/** Rows of taps go through block_row (stride 1, KW <= 7) instead of a loop over the taps. */
override UNROLL_ROWS: bool = STRIDE == 1u && KW <= 7u;
/** Values of a row window block_row reads: XP positions of KW taps. */
override WINDOW: u32 = XP + KW - 1u;
/** Masks A/B without colour groups keep the centre tap (B) or drop it (A) for every channel pair,
 *  so their centre row is taps 0..CENTRE_TAPS-1 and needs no per-channel test (block_centre). */
override CENTRE_PLAIN: bool = MASK_AB && GROUPS == 1u;
override CENTRE_TAPS: u32 = CX + select(0u, 1u, MASK == 2u && GROUPS == 1u);
/** Values of the centre row's window: XP positions of CENTRE_TAPS taps. */
override CENTRE_WINDOW: u32 = XP + CENTRE_TAPS - 1u;

// The first `taps` taps of one kernel row (stride 1, taps <= KW <= 7), unrolled: the row's values are
// loaded once as a window (w0..w3: values 0..15, only the first XP + taps - 1 used) and the tap with
// shift s takes positions s..s+XP-1 of it, where a loop would load XP values per tap (SwiftShader pays
// for every load and loop iteration: docs/performance.md). Shift s is tap s, or tap taps - 1 - s when
// `mirrored` (the input gradient, whose window starts taps - 1 before its first position). Window
// values past the used ones are never read, so callers may pass anything there.
fn block_row(w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>, wrow: u32, mirrored: bool, taps: u32) {
  let last = taps - 1u;
  block_tap(w0, w1, wrow + select(0u, last, mirrored));
  if (taps > 1u) { block_tap(vec4<f32>(w0.yzw, w1.x), vec4<f32>(w1.yzw, w2.x), wrow + select(1u, last - 1u, mirrored)); }
  if (taps > 2u) { block_tap(vec4<f32>(w0.zw, w1.xy), vec4<f32>(w1.zw, w2.xy), wrow + select(2u, last - 2u, mirrored)); }
  if (taps > 3u) { block_tap(vec4<f32>(w0.w, w1.xyz), vec4<f32>(w1.w, w2.xyz), wrow + select(3u, last - 3u, mirrored)); }
  if (taps > 4u) { block_tap(w1, w2, wrow + select(4u, last - 4u, mirrored)); }
  if (taps > 5u) { block_tap(vec4<f32>(w1.yzw, w2.x), vec4<f32>(w2.yzw, w3.x), wrow + select(5u, last - 5u, mirrored)); }
  if (taps > 6u) { block_tap(vec4<f32>(w1.zw, w2.xy), vec4<f32>(w2.zw, w3.xy), wrow + select(6u, last - 6u, mirrored)); }
}

// The centre tap of masks A/B with colour groups: only the channels j whose kept[j] holds.
fn block_centre(lo: vec4<f32>, hi: vec4<f32>, wk: u32, kept: vec4<bool>) {
  if (kept.x) {
    acc0 += weight[filter0 + wk] * lo;
    if (XP > 4u) { acc_hi0 += weight[filter0 + wk] * hi; }
  }
  if (CB > 1u && kept.y) {
    acc1 += weight[filter1 + wk] * lo;
    if (XP > 4u) { acc_hi1 += weight[filter1 + wk] * hi; }
  }
  if (CB > 2u) {
    if (kept.z) {
      acc2 += weight[filter2 + wk] * lo;
      if (XP > 4u) { acc_hi2 += weight[filter2 + wk] * hi; }
    }
    if (kept.w) {
      acc3 += weight[filter3 + wk] * lo;
      if (XP > 4u) { acc_hi3 += weight[filter3 + wk] * hi; }
    }
  }
}

// ---- two rows per thread (the forward's conv_forward_two_rows, the input gradient's
// conv_backward_input_two_rows): a second block, below_*, for the row under the thread's row. Both
// rows take the same tap from windows of different rows, so each weight loaded feeds 16 vec4 FMAs
// where one row fed 8 (weight loads were about 30% of a SwiftShader conv: docs/performance.md).

var<private> below0: vec4<f32>;
var<private> below1: vec4<f32>;
var<private> below2: vec4<f32>;
var<private> below3: vec4<f32>;
var<private> below_hi0: vec4<f32>;
var<private> below_hi1: vec4<f32>;
var<private> below_hi2: vec4<f32>;
var<private> below_hi3: vec4<f32>;

fn below_start() {
  below0 = vec4<f32>(0.0);
  below1 = vec4<f32>(0.0);
  below2 = vec4<f32>(0.0);
  below3 = vec4<f32>(0.0);
  below_hi0 = vec4<f32>(0.0);
  below_hi1 = vec4<f32>(0.0);
  below_hi2 = vec4<f32>(0.0);
  below_hi3 = vec4<f32>(0.0);
}

/** conv_forward_four_rows: XP = 4, and the hi blocks hold the thread's third and fourth rows. */
override FOUR_ROWS: bool = false;
/** The hi blocks are in use: positions 4..7 (XP = 8) or, with FOUR_ROWS, rows 2 and 3. */
override HI_BLOCKS: bool = XP > 4u || FOUR_ROWS;

// One tap for both rows: lo/hi the values for the thread's row, below_lo/below_hi for the row under it
// (with FOUR_ROWS: lo, below_lo, hi, below_hi for its four rows).
fn two_row_tap(lo: vec4<f32>, hi: vec4<f32>, below_lo: vec4<f32>, below_hi: vec4<f32>, wk: u32) {
  let w0 = weight[filter0 + wk];
  acc0 += w0 * lo;
  below0 += w0 * below_lo;
  if (HI_BLOCKS) {
    acc_hi0 += w0 * hi;
    below_hi0 += w0 * below_hi;
  }
  if (CB > 1u) {
    let w1 = weight[filter1 + wk];
    acc1 += w1 * lo;
    below1 += w1 * below_lo;
    if (HI_BLOCKS) {
      acc_hi1 += w1 * hi;
      below_hi1 += w1 * below_hi;
    }
  }
  if (CB > 2u) {
    let w2 = weight[filter2 + wk];
    let w3 = weight[filter3 + wk];
    acc2 += w2 * lo;
    acc3 += w3 * lo;
    below2 += w2 * below_lo;
    below3 += w3 * below_lo;
    if (HI_BLOCKS) {
      acc_hi2 += w2 * hi;
      acc_hi3 += w3 * hi;
      below_hi2 += w2 * below_hi;
      below_hi3 += w3 * below_hi;
    }
  }
}

// Values s..s+3 of a window (w0..w2: values 0..11), s < 8 (a constant where it is called).
fn window_at(w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, s: u32) -> vec4<f32> {
  switch (s) {
    case 0u: { return w0; }
    case 1u: { return vec4<f32>(w0.yzw, w1.x); }
    case 2u: { return vec4<f32>(w0.zw, w1.xy); }
    case 3u: { return vec4<f32>(w0.w, w1.xyz); }
    case 4u: { return w1; }
    case 5u: { return vec4<f32>(w1.yzw, w2.x); }
    case 6u: { return vec4<f32>(w1.zw, w2.xy); }
    default: { return vec4<f32>(w1.w, w2.xyz); }
  }
}

// Tap kx of kernel row `wrow` for both rows, from their windows (a: the thread's row's, b: the row
// under it): shift kx, or KW - 1 - kx when `mirrored` (the input gradient's windows start KW - 1 before
// its first position).
fn two_row_column(a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, wrow: u32, kx: u32, mirrored: bool) {
  let s = select(kx, KW - 1u - kx, mirrored);
  two_row_tap(window_at(a0, a1, a2, s), window_at(a1, a2, a3, s), window_at(b0, b1, b2, s), window_at(b1, b2, b3, s), wrow + kx);
}

// Taps 0..taps-1 of one kernel row for both rows, unrolled (taps: KW, or the centre row's CENTRE_TAPS).
fn two_row_taps(a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, wrow: u32, mirrored: bool, taps: u32) {
  if (taps > 0u) { two_row_column(a0, a1, a2, a3, b0, b1, b2, b3, wrow, 0u, mirrored); }
  if (taps > 1u) { two_row_column(a0, a1, a2, a3, b0, b1, b2, b3, wrow, 1u, mirrored); }
  if (taps > 2u) { two_row_column(a0, a1, a2, a3, b0, b1, b2, b3, wrow, 2u, mirrored); }
  if (taps > 3u) { two_row_column(a0, a1, a2, a3, b0, b1, b2, b3, wrow, 3u, mirrored); }
  if (taps > 4u) { two_row_column(a0, a1, a2, a3, b0, b1, b2, b3, wrow, 4u, mirrored); }
  if (taps > 5u) { two_row_column(a0, a1, a2, a3, b0, b1, b2, b3, wrow, 5u, mirrored); }
  if (taps > 6u) { two_row_column(a0, a1, a2, a3, b0, b1, b2, b3, wrow, 6u, mirrored); }
}

// Taps 0..taps-1 of one kernel row for conv_forward_four_rows' four rows, whose windows (values 0..11
// each) are r0 (the thread's first row) to r3; two_row_tap's blocks take rows 0, 2, 1, 3 as lo, hi,
// below_lo, below_hi.
fn four_row_column(r0a: vec4<f32>, r0b: vec4<f32>, r0c: vec4<f32>, r1a: vec4<f32>, r1b: vec4<f32>, r1c: vec4<f32>, r2a: vec4<f32>, r2b: vec4<f32>, r2c: vec4<f32>, r3a: vec4<f32>, r3b: vec4<f32>, r3c: vec4<f32>, wrow: u32, kx: u32) {
  two_row_tap(window_at(r0a, r0b, r0c, kx), window_at(r2a, r2b, r2c, kx), window_at(r1a, r1b, r1c, kx), window_at(r3a, r3b, r3c, kx), wrow + kx);
}

fn four_row_taps(r0a: vec4<f32>, r0b: vec4<f32>, r0c: vec4<f32>, r1a: vec4<f32>, r1b: vec4<f32>, r1c: vec4<f32>, r2a: vec4<f32>, r2b: vec4<f32>, r2c: vec4<f32>, r3a: vec4<f32>, r3b: vec4<f32>, r3c: vec4<f32>, wrow: u32, taps: u32) {
  if (taps > 0u) { four_row_column(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wrow, 0u); }
  if (taps > 1u) { four_row_column(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wrow, 1u); }
  if (taps > 2u) { four_row_column(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wrow, 2u); }
  if (taps > 3u) { four_row_column(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wrow, 3u); }
  if (taps > 4u) { four_row_column(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wrow, 4u); }
  if (taps > 5u) { four_row_column(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wrow, 5u); }
  if (taps > 6u) { four_row_column(r0a, r0b, r0c, r1a, r1b, r1c, r2a, r2b, r2c, r3a, r3b, r3c, wrow, 6u); }
}
