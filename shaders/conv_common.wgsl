// Shared by the convolution kernels (conv_forward.wgsl, conv_backward_input.wgsl,
// conv_backward_weight.wgsl): WGSL has no includes, so src/engine/ops/conv.ts puts this file in front
// of each of them (a compile message's line numbers count from the top of this file).
//
// Layout NCHW f32, weights [Cout, Cin, KH, KW] (cross-correlation). The dimensions in Params are those
// of the forward convolution (its input: n, cin, h, w; its output: cout, ho, wo) in every entry,
// whichever tensor is the entry's input or output. Masked taps are never visited: the loops run over
// the kept rows / columns only, with bounds that are override constants; the colour-group condition
// applies at the centre tap. No workgroup memory in the CPU-shaped kernels (barriers are slow on the
// CPU adapters); conv_grad_sums holds a few barriers per workgroup.

struct Params {
  n: u32, cin: u32, h: u32, w: u32,
  cout: u32, ho: u32, wo: u32, threads: u32,
  pad_t: i32, pad_l: i32, cblocks: u32, xblocks: u32,
  rows: u32, chunk_rows: u32, blank_rows: u32, _p1: u32,
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

// Derived from the mask and kernel size.
override CY: u32 = KH / 2u;
override CX: u32 = KW / 2u;
override MASK_AB: bool = MASK == 1u || MASK == 2u;
/** Rows visited in full: all of them, rows <= CY (vstack), rows < CY (A, B). */
override FULL_ROWS: u32 = select(select(KH, CY + 1u, MASK == 3u), CY, MASK_AB);
/** Masks A/B visit row CY up to column CX (exclusive), then maybe the centre tap. */
override HAS_CENTRE: bool = MASK == 2u || (MASK == 1u && GROUPS > 1u);
/** Kernel rows with any kept tap: the full ones, then the centre row of masks A/B. */
override KV: u32 = FULL_ROWS + select(0u, 1u, MASK_AB);

@group(0) @binding(0) var<uniform> params: Params;

// Is the centre tap from input channel ci to output channel co kept?
fn centre_kept(ci: u32, co: u32) -> bool {
  let gi = ci % GROUPS;
  let go = co % GROUPS;
  if (MASK == 1u) { return gi < go; }
  return gi <= go;
}

// The thread index of a 64-wide workgroup grid folded into 2-D (threadsGrid in kernels.ts).
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// WGSL leaves max/min/clamp of a NaN implementation-defined, and CPU adapters (lavapipe, SwiftShader)
// return the other operand, turning a NaN into a plausible number; these helpers keep NaN a NaN so a
// diverged model shows NaN instead of hiding it. The test reads the bits (a compiler may fold x != x).
fn is_nan4(v: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

fn safe_tanh(v: vec4<f32>) -> vec4<f32> {
  return select(tanh(clamp(v, vec4<f32>(-15.0), vec4<f32>(15.0))), v, is_nan4(v));
}

fn sigmoid4(v: vec4<f32>) -> vec4<f32> {
  // exp of a non-positive argument only, so nothing overflows.
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= vec4<f32>(0.0));
}

// ---- the tiled (GPU-shaped) variants' workgroup layout (conv_forward_tiled, conv_backward_input_tiled) ----
// A workgroup of 128 threads covers a TILE_H x TILE_W tile of one image for a group of channels: 4
// threads along x (4 positions each), TILE_H rows, 4 channel groups of CB.
const TILE_W: u32 = 16u;
const TILE_H: u32 = 8u;

struct TiledSlot {
  tx_tile: u32,   // the tile along x, along y
  ty_tile: u32,
  cg: u32,        // channel group
  n: u32,         // image
  live: bool,     // false past the last workgroup of a folded grid (it still reaches every barrier)
  tx: u32,        // the thread's x lane, row and channel group within the tile
  ty: u32,
  tc: u32,
}

// Params: rows = tiles along x, chunk_rows = tiles along y, cblocks = channel groups.
fn tiled_slot(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) -> TiledSlot {
  var r = wid.x + wid.y * nwg.x;
  var s: TiledSlot;
  s.tx_tile = r % params.rows;
  r = r / params.rows;
  s.ty_tile = r % params.chunk_rows;
  r = r / params.chunk_rows;
  s.cg = r % params.cblocks;
  s.n = r / params.cblocks;
  s.live = s.n < params.n;
  s.tx = lid % 4u;
  s.ty = (lid / 4u) % TILE_H;
  s.tc = lid / (4u * TILE_H);
  return s;
}
