// The input gradient shaped for discrete GPUs (conv_common.wgsl, conv_register_block.wgsl and
// conv_backward_input.wgsl go in front: this entry shares their bindings and mask constants).
//   conv_backward_input_tiled  a workgroup of 128 threads owns a tile of TILE_H x TILE_W input
//                              positions of one image and CIG = 4 * CB input channels; per chunk of
//                              CHK output channels it copies the grad_out patch that reaches the tile
//                              and the chunk's weights into workgroup memory (consecutive threads,
//                              consecutive addresses), then each thread gathers CB channels x 4
//                              positions from there (stride 2 by per-lane divisibility). Also
//                              convTranspose2d's forward, with its bias.
// Params: as conv_backward_input, with rows = tiles along x, chunk_rows = tiles along y, cblocks =
// input-channel groups of CIG. Workgroups: n * cblocks * tiles, folded into 2-D.

/** Output channels (of the forward convolution) per chunk in workgroup memory (chosen by conv.ts). */
override CHK: u32 = 4u;
override CIG: u32 = 4u * CB;
// Rows and columns of grad_out that reach a tile: at most (TILE + K - 2) / S + 1, plus one for the
// floor of the first.
override GP_H: u32 = (TILE_H + KH - 2u) / STRIDE + 2u;
override GP_W: u32 = (TILE_W + KW - 2u) / STRIDE + 2u;
override GPATCH: u32 = GP_H * GP_W;
override TAPS: u32 = KH * KW;
override G_TILE: u32 = CHK * GPATCH;
override WB_TILE: u32 = CHK * CIG * TAPS;

var<workgroup> g_tile: array<f32, G_TILE>;
var<workgroup> wb_tile: array<f32, WB_TILE>;

// Floor division by STRIDE (1 or 2) of a possibly negative value, and its divisibility.
fn floor_div_s(a: i32) -> i32 {
  if (STRIDE == 1u) { return a; }
  return a >> 1u;
}

fn divides_s(a: i32) -> bool {
  return STRIDE == 1u || (a & 1) == 0;
}

// One kept tap (ky, kx) of chunk channel c (output channel co) for the thread's CB input channels x 4
// positions; the patch starts at grad_out row oy_lo, column ox_lo.
fn tiled_bwd_tap(c: u32, ky: u32, kx: u32, iy: u32, ix0: u32, tc: u32, centre: bool, ci0: u32, co: u32, oy_lo: i32, ox_lo: i32) {
  let ty = i32(iy) + params.pad_t - i32(ky);
  if (!divides_s(ty)) { return; }
  let prow = c * GPATCH + u32(floor_div_s(ty) - oy_lo) * GP_W;
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let tx = i32(ix0 + j) + params.pad_l - i32(kx);
    if (divides_s(tx)) { v[j] = g_tile[prow + u32(floor_div_s(tx) - ox_lo)]; }
  }
  let wk = (c * CIG + tc * CB) * TAPS + ky * KW + kx;
  if (!centre || centre_kept(ci0, co)) { acc0 += wb_tile[wk] * v; }
  if (CB > 1u && (!centre || centre_kept(ci0 + 1u, co))) { acc1 += wb_tile[wk + TAPS] * v; }
  if (CB > 2u) {
    if (!centre || centre_kept(ci0 + 2u, co)) { acc2 += wb_tile[wk + 2u * TAPS] * v; }
    if (!centre || centre_kept(ci0 + 3u, co)) { acc3 += wb_tile[wk + 3u * TAPS] * v; }
  }
}

fn store_tiled_grad_input(n: u32, ci: u32, iy: u32, ix0: u32, v: vec4<f32>) {
  if (ci >= params.cin) { return; }
  var b = 0.0;
  if (HAS_BIAS) { b = bias[ci]; }
  let base = ((n * params.cin + ci) * params.h + iy) * params.w;
  for (var j = 0u; j < 4u; j++) {
    if (ix0 + j < params.w) {
      var x = v[j] + b;
      if (HAS_PRIOR) { x += prior_grad[base + ix0 + j]; }
      grad_input[base + ix0 + j] = x;
    }
  }
}

@compute @workgroup_size(128)
fn conv_backward_input_tiled(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let slot = tiled_slot(lid, wid, nwg);
  let tx_tile = slot.tx_tile;
  let ty_tile = slot.ty_tile;
  let cg = slot.cg;
  let n = slot.n;
  // Workgroups past the last (a folded grid) still reach every barrier, and write nothing.
  let live = slot.live;
  let tx = slot.tx;
  let ty = slot.ty;
  let tc = slot.tc;
  let iy = ty_tile * TILE_H + ty;
  let ix0 = tx_tile * TILE_W + tx * 4u;
  let ci_base = cg * CIG;
  let ci0 = ci_base + tc * CB;
  let oy_lo = floor_div_s(i32(ty_tile * TILE_H) + params.pad_t - i32(KH) + 1);
  let ox_lo = floor_div_s(i32(tx_tile * TILE_W) + params.pad_l - i32(KW) + 1);

  acc0 = vec4<f32>(0.0);
  acc1 = vec4<f32>(0.0);
  acc2 = vec4<f32>(0.0);
  acc3 = vec4<f32>(0.0);

  for (var co0 = 0u; co0 < params.cout; co0 += CHK) {
    // The grad_out patch of the chunk, zero outside grad_out and past cout.
    for (var i = lid; i < G_TILE; i += 128u) {
      let c = i / GPATCH;
      let p = i % GPATCH;
      let oy = oy_lo + i32(p / GP_W);
      let ox = ox_lo + i32(p % GP_W);
      let ok = live && co0 + c < params.cout && oy >= 0 && oy < i32(params.ho) && ox >= 0 && ox < i32(params.wo);
      let at = select(0u, ((n * params.cout + co0 + c) * params.ho + u32(select(0, oy, ok))) * params.wo + u32(select(0, ox, ok)), ok);
      g_tile[i] = select(0.0, grad_out[at], ok);
    }
    // The chunk's weights for the CIG input channels: wb_tile[(c * CIG + ci_local) * TAPS + k],
    // contiguous along (ci_local, k) in the weight tensor for each output channel.
    for (var i = lid; i < WB_TILE; i += 128u) {
      let c = i / (CIG * TAPS);
      let rest = i % (CIG * TAPS);
      let ci = ci_base + rest / TAPS;
      let ok = co0 + c < params.cout && ci < params.cin;
      let at = select(0u, ((co0 + c) * params.cin + ci_base) * TAPS + rest, ok);
      wb_tile[i] = select(0.0, weight[at], ok);
    }
    workgroupBarrier();

    let chunk = min(CHK, params.cout - co0);
    for (var c = 0u; c < chunk; c++) {
      let co = co0 + c;
      for (var ky = 0u; ky < FULL_ROWS; ky++) {
        for (var kx = 0u; kx < KW; kx++) { tiled_bwd_tap(c, ky, kx, iy, ix0, tc, false, ci0, co, oy_lo, ox_lo); }
      }
      if (MASK_AB) {
        for (var kx = 0u; kx < CX; kx++) { tiled_bwd_tap(c, CY, kx, iy, ix0, tc, false, ci0, co, oy_lo, ox_lo); }
        if (HAS_CENTRE) { tiled_bwd_tap(c, CY, CX, iy, ix0, tc, true, ci0, co, oy_lo, ox_lo); }
      }
    }
    workgroupBarrier();
  }

  if (live && iy < params.h && ci0 < params.cin) {
    store_tiled_grad_input(n, ci0, iy, ix0, acc0);
    if (CB > 1u) { store_tiled_grad_input(n, ci0 + 1u, iy, ix0, acc1); }
    if (CB > 2u) {
      store_tiled_grad_input(n, ci0 + 2u, iy, ix0, acc2);
      store_tiled_grad_input(n, ci0 + 3u, iy, ix0, acc3);
    }
  }
}
