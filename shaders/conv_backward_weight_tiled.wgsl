// The weight gradient shaped for discrete GPUs (conv_common.wgsl and conv_backward_weight.wgsl go in
// front: this entry shares their bindings and mask constants, and conv_grad_sums adds its split-K
// partials as it does the CPU-shaped kernel's).
//   conv_backward_weight_tiled  the gradient as a matrix product over positions p = (n, oy, ox):
//       grad_weight_partials[s, co, col] = sum over p in chunk s of grad_out[n, co, oy, ox] * patch[col, p]
//     where col = ci * KEPT + t runs over the mask's kept taps only (t < KEPT) and patch[col, p] is
//     the input under tap t of output p. A workgroup of 128 threads owns WT_CO output channels x
//     WT_COLS columns; per pass it copies WT_P positions of grad_out and of the patch into workgroup
//     memory (consecutive threads read consecutive positions), then each thread adds 4 columns of one
//     channel. Many workgroups (channel blocks x column blocks x splits) fill a large GPU at batch 32;
//     the CPU-shaped conv_backward_weight keeps its sums in registers instead.
// Params: rows = positions n * ho * wo, chunk_rows = positions per split (a multiple of WT_P),
// cblocks = channel blocks of WT_CO, xblocks = column blocks of WT_COLS. Workgroups:
// splits * cblocks * xblocks, folded into 2-D. Masked taps of every filter are written as exact zeros.

const WT_CO: u32 = 16u;
const WT_COLS: u32 = 32u;
const WT_P: u32 = 32u;

/** Kept taps per input channel: the full rows, then on a mask A/B's centre row the columns left of the centre and maybe the centre. */
override KEPT: u32 = FULL_ROWS * KW + select(0u, CX + select(0u, 1u, HAS_CENTRE), MASK_AB);

var<workgroup> grad_tile: array<f32, 512>;   // [WT_CO][WT_P]
var<workgroup> patch_tile: array<f32, 1024>; // [WT_P][WT_COLS]

// (ky, kx) of kept tap t.
fn kept_tap(t: u32) -> vec2<u32> {
  if (t < FULL_ROWS * KW) { return vec2<u32>(t / KW, t % KW); }
  return vec2<u32>(CY, t - FULL_ROWS * KW);
}

// Is tap (ky, kx) among the kept ones (for some channel pair: the centre's colour condition aside)?
fn tap_kept(ky: u32, kx: u32) -> bool {
  return ky < FULL_ROWS || (MASK_AB && ky == CY && (kx < CX || (HAS_CENTRE && kx == CX)));
}

@compute @workgroup_size(128)
fn conv_backward_weight_tiled(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  var r = wid.x + wid.y * nwg.x;
  let colb = r % params.xblocks;
  r = r / params.xblocks;
  let cob = r % params.cblocks;
  let split = r / params.cblocks;
  let co_base = cob * WT_CO;
  let col_base = colb * WT_COLS;
  let plane = params.ho * params.wo;
  let cols = params.cin * KEPT;
  // A folded grid's extra workgroups have an empty range: they reach every barrier and write nothing.
  let p_start = split * params.chunk_rows;
  let p_end = min(params.rows, p_start + params.chunk_rows);
  let tr = lid / 8u;
  let tcol = (lid % 8u) * 4u;

  var acc = vec4<f32>(0.0);
  for (var pb = p_start; pb < p_end; pb += WT_P) {
    for (var i = lid; i < WT_CO * WT_P; i += 128u) {
      let p = pb + i % WT_P;
      let co = co_base + i / WT_P;
      let ok = p < p_end && co < params.cout;
      let at = ((p / plane) * params.cout + co) * plane + p % plane;
      grad_tile[i] = select(0.0, grad_out[select(0u, at, ok)], ok);
    }
    for (var i = lid; i < WT_COLS * WT_P; i += 128u) {
      let j = i / WT_P;
      let pl = i % WT_P;
      let p = pb + pl;
      let col = col_base + j;
      let ci = col / KEPT;
      let tap = kept_tap(col % KEPT);
      let n = p / plane;
      let rem = p % plane;
      let iy = i32((rem / params.wo) * STRIDE + tap.x) - params.pad_t;
      let ix = i32((rem % params.wo) * STRIDE + tap.y) - params.pad_l;
      let ok = p < p_end && col < cols && iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w);
      let at = ((n * params.cin + ci) * params.h + u32(select(0, iy, ok))) * params.w + u32(select(0, ix, ok));
      patch_tile[pl * WT_COLS + j] = select(0.0, input[select(0u, at, ok)], ok);
    }
    workgroupBarrier();
    for (var pl = 0u; pl < WT_P; pl++) {
      let g = grad_tile[tr * WT_P + pl];
      let at = pl * WT_COLS + tcol;
      acc += g * vec4<f32>(patch_tile[at], patch_tile[at + 1u], patch_tile[at + 2u], patch_tile[at + 3u]);
    }
    workgroupBarrier();
  }

  let co = co_base + tr;
  if (p_start >= params.rows || co >= params.cout) { return; }
  let taps = KH * KW;
  for (var q = 0u; q < 4u; q++) {
    let col = col_base + tcol + q;
    if (col >= cols) { break; }
    let ci = col / KEPT;
    let t = col % KEPT;
    let tap = kept_tap(t);
    let fbase = ((split * params.cout + co) * params.cin + ci) * taps;
    let centre = MASK_AB && tap.x == CY && tap.y == CX;
    grad_weight_partials[fbase + tap.x * KW + tap.y] = select(acc[q], 0.0, centre && !centre_kept(ci, co));
    // The column of a filter's first kept tap also writes the taps no column covers.
    if (t == 0u) {
      for (var k = 0u; k < taps; k++) {
        if (!tap_kept(k / KW, k % KW)) { grad_weight_partials[fbase + k] = 0.0; }
      }
    }
  }
}
