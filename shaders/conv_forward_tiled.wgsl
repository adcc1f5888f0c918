// The forward convolution shaped for discrete GPUs (conv_common.wgsl, conv_register_block.wgsl and
// conv_forward.wgsl go in front: this entry shares their bindings, mask constants and fused epilogue).
//   conv_forward_tiled  a workgroup of 128 threads owns a tile of TILE_H x TILE_W output positions of
//                       one image and COT = 4 * CB output channels; per chunk of CIT input channels it
//                       copies the input patch under the tile and the chunk's weights into workgroup
//                       memory (consecutive threads read consecutive addresses), then each thread
//                       adds CB channels x 4 positions from there. Many small workgroups fill a large
//                       GPU at batch 32; the CPU-shaped conv_forward avoids barriers instead.
// Params: as conv_forward, with rows = tiles along x, chunk_rows = tiles along y, cblocks = channel
// groups of COT. Workgroups: n * cblocks * tiles, folded into 2-D.

/** Input channels per chunk in workgroup memory (chosen by conv.ts to fit the limit). */
override CIT: u32 = 4u;
override COT: u32 = 4u * CB;
override PATCH_H: u32 = (TILE_H - 1u) * STRIDE + KH;
override PATCH_W: u32 = (TILE_W - 1u) * STRIDE + KW;
override PATCH: u32 = PATCH_H * PATCH_W;
override TAPS: u32 = KH * KW;
override IN_TILE: u32 = CIT * PATCH;
override W_TILE: u32 = CIT * COT * TAPS;

var<workgroup> in_tile: array<f32, IN_TILE>;
var<workgroup> w_tile: array<f32, W_TILE>;

// One kept tap (ky, kx) of chunk channel c for the thread's CB channels x 4 positions.
fn tiled_tap(c: u32, ky: u32, kx: u32, py: u32, px0: u32, tc: u32, centre: bool, ci: u32, co0: u32) {
  let row = c * PATCH + (py + ky) * PATCH_W + px0 + kx;
  let s = STRIDE;
  let v = vec4<f32>(in_tile[row], in_tile[row + s], in_tile[row + 2u * s], in_tile[row + 3u * s]);
  let wk = (tc * CB * CIT + c) * TAPS + ky * KW + kx;
  let step = CIT * TAPS;
  if (!centre || centre_kept(ci, co0)) { acc0 += w_tile[wk] * v; }
  if (CB > 1u && (!centre || centre_kept(ci, co0 + 1u))) { acc1 += w_tile[wk + step] * v; }
  if (CB > 2u) {
    if (!centre || centre_kept(ci, co0 + 2u)) { acc2 += w_tile[wk + 2u * step] * v; }
    if (!centre || centre_kept(ci, co0 + 3u)) { acc3 += w_tile[wk + 3u * step] * v; }
  }
}

@compute @workgroup_size(128)
fn conv_forward_tiled(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
  let oy = ty_tile * TILE_H + ty;
  let ox0 = tx_tile * TILE_W + tx * 4u;
  let co_base = cg * COT;
  let co0 = co_base + tc * CB;
  let iy_base = i32(ty_tile * TILE_H * STRIDE) - params.pad_t;
  let ix_base = i32(tx_tile * TILE_W * STRIDE) - params.pad_l;

  acc0 = vec4<f32>(0.0);
  acc1 = vec4<f32>(0.0);
  acc2 = vec4<f32>(0.0);
  acc3 = vec4<f32>(0.0);

  for (var ci0 = 0u; ci0 < params.cin; ci0 += CIT) {
    // The input patch of the chunk, zero outside the image (padding) and past cin.
    for (var i = lid; i < IN_TILE; i += 128u) {
      let c = i / PATCH;
      let p = i % PATCH;
      let iy = iy_base + i32(p / PATCH_W);
      let ix = ix_base + i32(p % PATCH_W);
      let ok = live && ci0 + c < params.cin && iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w);
      let at = select(0u, ((n * params.cin + ci0 + c) * params.h + u32(select(0, iy, ok))) * params.w + u32(select(0, ix, ok)), ok);
      in_tile[i] = select(0.0, input[at], ok);
    }
    // The chunk's weights of the COT channels: w_tile[(co_local * CIT + c) * TAPS + k], contiguous
    // along (c, k) in the weight tensor for each co.
    for (var i = lid; i < W_TILE; i += 128u) {
      let co = co_base + i / (CIT * TAPS);
      let rest = i % (CIT * TAPS);
      let c = rest / TAPS;
      let ok = co < params.cout && ci0 + c < params.cin;
      let at = select(0u, (co * params.cin + ci0) * TAPS + rest, ok);
      w_tile[i] = select(0.0, weight[at], ok);
    }
    workgroupBarrier();

    let chunk = min(CIT, params.cin - ci0);
    let py = ty * STRIDE;
    let px0 = tx * 4u * STRIDE;
    for (var c = 0u; c < chunk; c++) {
      let ci = ci0 + c;
      for (var ky = 0u; ky < FULL_ROWS; ky++) {
        for (var kx = 0u; kx < KW; kx++) { tiled_tap(c, ky, kx, py, px0, tc, false, ci, co0); }
      }
      if (MASK_AB) {
        for (var kx = 0u; kx < CX; kx++) { tiled_tap(c, CY, kx, py, px0, tc, false, ci, co0); }
        if (HAS_CENTRE) { tiled_tap(c, CY, CX, py, px0, tc, true, ci, co0); }
      }
    }
    workgroupBarrier();
  }

  if (live && oy < params.ho && ox0 < params.wo && co0 < params.cout) {
    fwd_epilogue(n, co0, oy, ox0, acc0, acc1, acc2, acc3);
  }
}
