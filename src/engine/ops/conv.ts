// Convolutions (shaders/conv_*.wgsl): conv2d with masks (A/B with colour groups, vstack; a 1xk kernel
// with A/B is the gated PixelCNN's horizontal stack), stride 1|2, asymmetric padding (negative
// crops) and a fused epilogue (bias, pre-residual, z's per-image gate terms, interleaved gate,
// residual); convTranspose2d; the stand-alone gate (optionally on a band of rows, with z's terms).
// Layout NCHW, weights [Cout, Cin, kh, kw], cross-correlation.
//
// One kernel family serves all of them, one file per direction: conv_forward, conv_backward_input
// (the transposed convolution, which is also convTranspose2d's forward) and conv_backward_weight
// (split-K partial sums over chunks of N*Ho rows, then conv_grad_sums adds the chunks and, in the
// same dispatch, takes the per-channel sums for bias and cond gradients). Each file gets conv_common.wgsl in front;
// the forward and input-gradient files also get conv_register_block.wgsl, the register block they share.
import convCommonWgsl from '../../../shaders/conv_common.wgsl?raw';
import convRegisterBlockWgsl from '../../../shaders/conv_register_block.wgsl?raw';
import convForwardWgsl from '../../../shaders/conv_forward.wgsl?raw';
import convBackwardInputWgsl from '../../../shaders/conv_backward_input.wgsl?raw';
import convBackwardWeightWgsl from '../../../shaders/conv_backward_weight.wgsl?raw';
import convForwardTiledWgsl from '../../../shaders/conv_forward_tiled.wgsl?raw';
import convBackwardInputTiledWgsl from '../../../shaders/conv_backward_input_tiled.wgsl?raw';
import convBackwardWeightTiledWgsl from '../../../shaders/conv_backward_weight_tiled.wgsl?raw';
import { gradTarget, record } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import { empty, engine, Tensor, ShapeError, shapeString, type Bindable } from '../tensor';
import { MAX_WORKGROUPS_PER_DIM, grid1d, type KernelSpec } from '../../gpu/context';

export interface ConvMask {
  /** 'A' drops the centre tap, 'B' keeps it; both keep rows above and the left part of the centre row. 'vstack' keeps rows <= centre. */
  type: 'A' | 'B' | 'vstack';
  /** Colour groups (channel group = channel index mod groups) for A/B: at the centre tap input group gi reaches output group go when gi < go (A) or gi <= go (B). */
  groups?: number;
}

export type ConvPadding = number | readonly [top: number, bottom: number, left: number, right: number];

export interface Conv2dOptions {
  stride?: 1 | 2;
  /** One value for all sides, or [top, bottom, left, right]; a negative value crops. Default 0. */
  padding?: ConvPadding;
  bias?: Tensor;
  mask?: ConvMask;
  /** Added last (after the gate), same shape as the output. */
  residual?: Tensor;
  /** Added to the pre-activation (before the gate), [N, Cout, Ho, Wo]. Not together with residual (one addend binding). */
  preResidual?: Tensor;
  /** [N, Cout]: added to the pre-activation at every position of image n (z's gate terms), before the gate. */
  cond?: Tensor;
  /** Gated activation over interleaved channels: out[c] = tanh(pre[2c]) * sigmoid(pre[2c+1]). */
  gate?: boolean;
}

export interface ConvTranspose2dOptions {
  stride?: 1 | 2;
  padding?: number;
  outputPadding?: number;
  bias?: Tensor;
}

const WG = 64;
const MASK_CODE = { none: 0, A: 1, B: 2, vstack: 3 } as const;

/** Geometry of one convolution, in the forward conv's terms (x -> y). */
interface Geometry {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  ho: number;
  wo: number;
  kh: number;
  kw: number;
  stride: number;
  padT: number;
  padL: number;
  mask: number;
  groups: number;
}

/** The shader files by direction; WGSL has no includes, so each is compiled with the shared part in front. */
const CONV_SHADERS = {
  forward: { name: 'conv_forward.wgsl', code: `${convCommonWgsl}\n${convRegisterBlockWgsl}\n${convForwardWgsl}` },
  backwardInput: { name: 'conv_backward_input.wgsl', code: `${convCommonWgsl}\n${convRegisterBlockWgsl}\n${convBackwardInputWgsl}` },
  backwardWeight: { name: 'conv_backward_weight.wgsl', code: `${convCommonWgsl}\n${convBackwardWeightWgsl}` },
  // The GPU-shaped variants reuse their direction's bindings and epilogue: that file goes in front.
  forwardTiled: { name: 'conv_forward_tiled.wgsl', code: `${convCommonWgsl}\n${convRegisterBlockWgsl}\n${convForwardWgsl}\n${convForwardTiledWgsl}` },
  backwardInputTiled: {
    name: 'conv_backward_input_tiled.wgsl',
    code: `${convCommonWgsl}\n${convRegisterBlockWgsl}\n${convBackwardInputWgsl}\n${convBackwardInputTiledWgsl}`,
  },
  backwardWeightTiled: {
    name: 'conv_backward_weight_tiled.wgsl',
    code: `${convCommonWgsl}\n${convBackwardWeightWgsl}\n${convBackwardWeightTiledWgsl}`,
  },
} as const;

// ---- kernel variants per direction ------------------------------------------------------------------
// 'cpu': one thread per CB channels x XP positions, no workgroup memory (tuned on CPU adapters);
// 'tiled': workgroups of 128 threads share tiles of input and weights in workgroup memory (shaped for
// discrete GPUs). conv-variants.ts times both on an adapter and calls setConvVariants with the faster.

export type ConvVariant = 'cpu' | 'tiled';
export const CONV_VARIANTS: readonly ConvVariant[] = ['cpu', 'tiled'];
/**
 * The directions with variants: the forward conv (also convTranspose2d's input gradient), the input
 * gradient (also convTranspose2d's forward) and the weight gradient (both ops').
 */
export type ConvDirection = 'forward' | 'backwardInput' | 'backwardWeight';
export const CONV_DIRECTIONS: readonly ConvDirection[] = ['forward', 'backwardInput', 'backwardWeight'];

const selectedVariants: Record<ConvDirection, ConvVariant> = { forward: 'cpu', backwardInput: 'cpu', backwardWeight: 'cpu' };

/** Selects the kernel variant per direction for every later conv (the CPU-shaped ones until a choice is made). */
export function setConvVariants(choice: Partial<Record<ConvDirection, ConvVariant>>): void {
  for (const d of CONV_DIRECTIONS) {
    const v = choice[d];
    if (v === undefined) continue;
    if (!CONV_VARIANTS.includes(v)) throw new Error(`conv variant for ${d} must be one of ${CONV_VARIANTS.join(', ')}, got ${String(v)}`);
    selectedVariants[d] = v;
  }
}

export function convVariants(): Readonly<Record<ConvDirection, ConvVariant>> {
  return { ...selectedVariants };
}

/** Output tile of the tiled kernels (TILE_W x TILE_H in the shaders) and their workgroup memory budget in floats (WebGPU's guaranteed 16 KiB). */
const TILE_W = 16;
const TILE_H = 8;
const TILED_SHARED_FLOATS = 4096;

/** Channels per chunk in workgroup memory: as many as fit, at most 8 and at most `channels`. */
function tiledChunk(floatsPerChannel: number, channels: number): number {
  return Math.max(1, Math.min(8, channels, Math.floor(TILED_SHARED_FLOATS / floatsPerChannel)));
}

function spec(
  shader: keyof typeof CONV_SHADERS,
  entry: string,
  constants: Record<string, number>,
  bindings: readonly ('read' | 'rw')[],
): KernelSpec {
  return { ...CONV_SHADERS[shader], entry, constants, bindings };
}

function geometryConstants(g: Geometry, cb: number): Record<string, number> {
  return { KH: g.kh, KW: g.kw, STRIDE: g.stride, MASK: g.mask, GROUPS: g.groups, CB: cb };
}

function params(g: Geometry, threads: number, cblocks: number, xblocks: number, rows = 0, chunkRows = 0, blankRows = 0): Uint32Array {
  return new Params()
    .u(g.n, g.cin, g.h, g.w)
    .u(g.cout, g.ho, g.wo, threads)
    .u(g.padT, g.padL, cblocks, xblocks)
    .u(rows, chunkRows, blankRows, 0)
    .build();
}

/** Channels per thread: 4 for wide layers, fewer when there are only 1 or 2 channels (the direct path). */
function channelBlock(channels: number, gate: boolean): number {
  if (channels >= 4) return 4;
  if (channels >= 2 || gate) return 2;
  return 1;
}

/**
 * Output positions per thread along x: 8 where rows are wide enough, so each weight load feeds 8
 * FMAs (weight loads dominate the kernels on CPU adapters; see docs/performance.md), else 4.
 */
function positionsPerThread(width: number): number {
  return width > 4 ? 8 : 4;
}

/** Unmasked 1x1 at stride 1: the shaders' conv_forward_1x1 and conv_backward_input_1x1 serve it. */
function pointwise(g: Geometry): boolean {
  return g.kh === 1 && g.kw === 1 && g.mask === 0 && g.stride === 1;
}

/**
 * The 1x1 forward's threads own 8 output channels (EIGHT_CHANNELS in conv_register_block.wgsl) when
 * there are at least 8, so each input load feeds 8 channels: loads, not FMAs, set a 1x1 conv's time on
 * the CPU adapters. The input gradient keeps 4: 8 was no faster there (docs/performance.md).
 */
function eightChannels(channels: number): boolean {
  return channels >= 8;
}

/**
 * Unmasked stride 2 with KW <= 7 and non-negative padding: the input gradient's conv_backward_input_s2
 * serves it (both phases of 8 consecutive positions per thread, taps unrolled).
 */
function stridePairs(g: Geometry): boolean {
  return g.stride === 2 && g.mask === 0 && g.kw <= 7 && g.padL >= 0 && g.padT >= 0;
}

/**
 * Stride 1, KW <= 7, more than one kernel row, masks A/B only without colour groups (their centre tap
 * is then kept or dropped for every channel): conv_forward_two_rows and conv_backward_input_two_rows
 * serve it (two rows per thread). One-row kernels (the horizontal stacks) gained nothing from it on
 * SwiftShader and lost on lavapipe (docs/performance.md).
 */
function twoRows(g: Geometry): boolean {
  const maskOk = g.mask === 0 || g.mask === 3 || g.groups === 1;
  return g.stride === 1 && g.kw <= 7 && g.kh > 1 && maskOk;
}

/**
 * Output rows on top whose taps all fall in the top padding, so their value is the epilogue alone
 * (bias, cond, ...): the vertical stacks' extra row, which sees only the zero row on top
 * (networks.ts). The two-row and four-row forwards lay their blocks out from the next row and write
 * these rows from the epilogue alone, so MNIST's 29 x 28 vpre fills four-row blocks exactly instead of
 * padding 29 rows to 32. At least one row is left to the blocks, which are what write the blank ones.
 */
function blankTopRows(g: Geometry): number {
  if (g.stride !== 1) return 0;
  const lastKernelRow = g.mask === 0 ? g.kh - 1 : Math.floor(g.kh / 2);
  return Math.max(0, Math.min(g.ho - 1, g.padT - lastKernelRow));
}

/**
 * The forward of a two-row conv where four rows of 4 positions per thread (conv_forward_four_rows) cover
 * fewer padded outputs than two rows of 8: rows 4 past a multiple of 8 wide, like MNIST's 28, leave
 * the last 8-position block half empty (also the vertical stacks' 29 x 28).
 */
function fourRows(g: Geometry): boolean {
  const padded = (n: number, block: number): number => Math.ceil(n / block) * block;
  const rows = g.ho - blankTopRows(g);
  return twoRows(g) && padded(rows, 4) * padded(g.wo, 4) < padded(rows, 2) * padded(g.wo, 8);
}

/**
 * The two-row and four-row forwards and conv_forward at stride 2 read a zero-padded copy of their
 * input, on which the conv is a valid one (pad 0), so their loads need no bounds checks
 * (conv_forward.wgsl's PADDED). The copy holds every row and column their blocks read, including those
 * of block rows and positions past the output, which are computed and not stored: `rows` output rows
 * and `columns` output positions. The horizontal stacks (masks A/B at stride 1 in conv_forward) keep
 * their checks: there the copy cost what it saved (docs/performance.md).
 */
function paddedInput(x: Tensor, g: Geometry, rows: number, columns: number): { input: Tensor; geometry: Geometry } {
  const height = (rows - 1) * g.stride + g.kh;
  const width = (columns - 1) * g.stride + g.kw;
  const threads = g.n * g.cin * height;
  const input = empty([g.n, g.cin, height, width]);
  launch(spec('forward', 'conv_pad_input', {}, ['read', 'rw']), [x.binding, input.binding], params(g, threads, 0, 0, height, width), threadsGrid(threads, WG));
  return { input, geometry: { ...g, h: height, w: width, padT: 0, padL: 0 } };
}

/**
 * A 1x1 conv whose output rows are a band of whole input rows (no horizontal padding, no padded rows)
 * is the same conv on the planes flattened into one row: [n, c, 1, h*w], the band starting -padT rows
 * in. Its blocks of 8 positions then tile MNIST's 28 x 28 planes exactly (28-wide rows left half of
 * every fourth block empty) and lie inside the input but for a plane's last one, so the kernel's loads
 * need no bounds checks. Null when the conv is not of that kind.
 */
function flatPlanes(g: Geometry): Geometry | null {
  const band = g.padL === 0 && g.wo === g.w && g.padT <= 0 && g.ho - g.padT <= g.h;
  return band ? { ...g, h: 1, w: g.h * g.w, ho: 1, wo: g.ho * g.wo, padT: 0, padL: g.padT * g.w } : null;
}

/** conv_forward at stride 2 without masks A/B reads a padded input (paddedInput). */
function stridedPadded(g: Geometry): boolean {
  return g.stride === 2 && g.mask !== MASK_CODE.A && g.mask !== MASK_CODE.B;
}

/** A scratch buffer for an unused read-write binding. */
function scratch(): Tensor {
  return empty([1]);
}

// ---- kernel launchers (no autograd) -----------------------------------------------------------------

interface ForwardExtras {
  bias?: Tensor;
  residual?: Tensor;
  preResidual?: Tensor;
  cond?: Tensor;
  gate?: boolean;
  /** Also write the pre-activation (before the gate) here. */
  pre?: Tensor;
}

/** y = conv(x, w) with its epilogue; y is [n, gate ? cout/2 : cout, ho, wo]. */
function runForward(x: Tensor, w: Tensor, g: Geometry, extras: ForwardExtras = {}, variant: ConvVariant = selectedVariants.forward): Tensor {
  const gate = extras.gate ?? false;
  const y = empty([g.n, gate ? g.cout / 2 : g.cout, g.ho, g.wo]);
  const cb = channelBlock(g.cout, gate);
  const dummy = extras.pre ? null : scratch();
  const addend = extras.residual ?? extras.preResidual;
  const xp = positionsPerThread(g.wo);
  const constants: Record<string, number> = {
    ...geometryConstants(g, cb),
    HAS_BIAS: extras.bias ? 1 : 0,
    RES_MODE: extras.residual ? 1 : extras.preResidual ? 2 : 0,
    HAS_COND: extras.cond ? 1 : 0,
    GATE: gate ? 1 : 0,
    WRITE_PRE: extras.pre ? 1 : 0,
    XP: xp,
  };
  const bindings = ['read', 'read', 'read', 'read', 'rw', 'rw', 'read'] as const;
  const buffers = [x.binding, w.binding, (extras.bias ?? w).binding, (addend ?? x).binding, y.binding, (extras.pre ?? dummy!).binding, (extras.cond ?? w).binding];
  if (variant === 'tiled') {
    // A workgroup: TILE_H x TILE_W outputs x 4*CB channels; CIT input channels per pass through workgroup memory.
    const cot = 4 * cb;
    const cblocks = Math.ceil(g.cout / cot);
    const tilesX = Math.ceil(g.wo / TILE_W);
    const tilesY = Math.ceil(g.ho / TILE_H);
    const patch = ((TILE_H - 1) * g.stride + g.kh) * ((TILE_W - 1) * g.stride + g.kw);
    constants.CIT = tiledChunk(patch + cot * g.kh * g.kw, g.cin);
    launch(spec('forwardTiled', 'conv_forward_tiled', constants, bindings), buffers, params(g, 0, cblocks, 0, tilesX, tilesY), grid1d(g.n * cblocks * tilesX * tilesY));
  } else if (twoRows(g)) {
    // fourRows() picks four rows of 4 positions among the two-row convs.
    const four = fourRows(g);
    const positions = four ? 4 : xp;
    const rowsPerThread = four ? 4 : 2;
    const blank = blankTopRows(g);
    const cblocks = Math.ceil(g.cout / cb);
    const xblocks = Math.ceil(g.wo / positions);
    const rowBlocks = Math.ceil((g.ho - blank) / rowsPerThread);
    const threads = g.n * cblocks * rowBlocks * xblocks;
    const { input, geometry } = paddedInput(x, g, blank + rowBlocks * rowsPerThread, xblocks * positions);
    const entry = four ? spec('forward', 'conv_forward_four_rows', { ...constants, XP: 4, FOUR_ROWS: 1, PADDED: 1 }, bindings) : spec('forward', 'conv_forward_two_rows', { ...constants, PADDED: 1 }, bindings);
    launch(entry, [input.binding, ...buffers.slice(1)], params(geometry, threads, cblocks, xblocks, 0, 0, blank), threadsGrid(threads, WG));
    input.dispose();
  } else if (pointwise(g)) {
    const gp = flatPlanes(g) ?? g;
    const eight = eightChannels(gp.cout);
    const positions = positionsPerThread(gp.wo);
    const cblocks = Math.ceil(gp.cout / (eight ? 8 : cb));
    const xblocks = Math.ceil(gp.wo / positions);
    const threads = gp.n * cblocks * gp.ho * xblocks;
    const entry = spec('forward', 'conv_forward_1x1', { ...constants, XP: positions, EIGHT_CHANNELS: eight ? 1 : 0 }, bindings);
    launch(entry, buffers, params(gp, threads, cblocks, xblocks), threadsGrid(threads, WG));
  } else if (stridedPadded(g)) {
    const cblocks = Math.ceil(g.cout / cb);
    const xblocks = Math.ceil(g.wo / xp);
    const threads = g.n * cblocks * g.ho * xblocks;
    const { input, geometry } = paddedInput(x, g, g.ho, xblocks * xp);
    launch(spec('forward', 'conv_forward', { ...constants, PADDED: 1 }, bindings), [input.binding, ...buffers.slice(1)], params(geometry, threads, cblocks, xblocks), threadsGrid(threads, WG));
    input.dispose();
  } else {
    const cblocks = Math.ceil(g.cout / cb);
    const xblocks = Math.ceil(g.wo / xp);
    const threads = g.n * cblocks * g.ho * xblocks;
    launch(spec('forward', 'conv_forward', constants, bindings), buffers, params(g, threads, cblocks, xblocks), threadsGrid(threads, WG));
  }
  dummy?.dispose();
  return y;
}

/** The transposed convolution of gy ([n, cout, ho, wo]) with w [cout, cin, kh, kw]: [n, cin, h, w] (+ bias[cin]). */
/** `prior`: the input's gradient from its other users, added in the store (autograd's accumulation). */
function runBackwardInput(gy: Tensor, w: Tensor, g: Geometry, bias?: Tensor, variant: ConvVariant = selectedVariants.backwardInput, prior: Tensor | null = null): Tensor {
  const d = empty([g.n, g.cin, g.h, g.w]);
  const cb = channelBlock(g.cin, false);
  const perPhase = Math.ceil(g.w / g.stride);
  const xp = positionsPerThread(perPhase);
  const constants: Record<string, number> = { ...geometryConstants(g, cb), HAS_BIAS: bias ? 1 : 0, XP: xp, HAS_PRIOR: prior ? 1 : 0 };
  const bindings = ['read', 'read', 'read', 'rw', 'read'] as const;
  const buffers = [gy.binding, w.binding, (bias ?? w).binding, d.binding, (prior ?? gy).binding];
  if (variant === 'tiled') {
    // A workgroup: TILE_H x TILE_W input positions x 4*CB channels; CHK output channels per pass.
    const cig = 4 * cb;
    const cblocks = Math.ceil(g.cin / cig);
    const tilesX = Math.ceil(g.w / TILE_W);
    const tilesY = Math.ceil(g.h / TILE_H);
    const patch = (Math.floor((TILE_H + g.kh - 2) / g.stride) + 2) * (Math.floor((TILE_W + g.kw - 2) / g.stride) + 2);
    constants.CHK = tiledChunk(patch + cig * g.kh * g.kw, g.cout);
    launch(spec('backwardInputTiled', 'conv_backward_input_tiled', constants, bindings), buffers, params(g, 0, cblocks, 0, tilesX, tilesY), grid1d(g.n * cblocks * tilesX * tilesY));
  } else if (twoRows(g)) {
    const cblocks = Math.ceil(g.cin / cb);
    const xblocks = Math.ceil(g.w / xp);
    const threads = g.n * cblocks * Math.ceil(g.h / 2) * xblocks;
    launch(spec('backwardInput', 'conv_backward_input_two_rows', constants, bindings), buffers, params(g, threads, cblocks, xblocks), threadsGrid(threads, WG));
  } else if (stridePairs(g)) {
    // A thread: CB channels x 8 consecutive positions (4 per phase), so XP = 4 in the stores.
    const cblocks = Math.ceil(g.cin / cb);
    const xblocks = Math.ceil(g.w / 8);
    const threads = g.n * cblocks * g.h * xblocks;
    launch(spec('backwardInput', 'conv_backward_input_s2', { ...constants, XP: 4, PAD_L: g.padL }, bindings), buffers, params(g, threads, cblocks, xblocks), threadsGrid(threads, WG));
  } else {
    const cblocks = Math.ceil(g.cin / cb);
    const xblocks = g.stride * Math.ceil(perPhase / xp);
    const threads = g.n * cblocks * g.h * xblocks;
    launch(spec('backwardInput', pointwise(g) ? 'conv_backward_input_1x1' : 'conv_backward_input', constants, bindings), buffers, params(g, threads, cblocks, xblocks), threadsGrid(threads, WG));
  }
  return d;
}

/** Threads the weight-gradient kernel aims for (split-K fills the GPU when filters are small). */
const WEIGHT_GRAD_TARGET_THREADS = 8192;
/** Each chunk sums at least this many output pixels. */
const WEIGHT_GRAD_MIN_CHUNK = 256;

/** Number of chunks (splits) of the N*Ho output rows for the weight gradient. Exported for tests. */
export function weightGradSplits(rows: number, rowLength: number, baseThreads: number): { splits: number; chunkRows: number } {
  let splits = Math.max(1, Math.min(rows, Math.ceil(WEIGHT_GRAD_TARGET_THREADS / Math.max(baseThreads, 1))));
  const minRows = Math.max(1, Math.ceil(WEIGHT_GRAD_MIN_CHUNK / Math.max(rowLength, 1)));
  splits = Math.max(1, Math.min(splits, Math.floor(rows / minRows)));
  const chunkRows = Math.max(1, Math.ceil(rows / splits));
  return { splits: Math.max(1, Math.ceil(rows / chunkRows)), chunkRows };
}

/** Kept taps per input channel of a mask (conv_common.wgsl's KEPT): full rows, then the centre row's left part and maybe the centre. */
function keptTaps(g: Geometry): number {
  const ab = g.mask === MASK_CODE.A || g.mask === MASK_CODE.B;
  const cy = Math.floor(g.kh / 2);
  const cx = Math.floor(g.kw / 2);
  const fullRows = g.mask === MASK_CODE.none ? g.kh : g.mask === MASK_CODE.vstack ? cy + 1 : cy;
  const centre = g.mask === MASK_CODE.B || (g.mask === MASK_CODE.A && g.groups > 1);
  return fullRows * g.kw + (ab ? cx + (centre ? 1 : 0) : 0);
}

/** The tiled weight gradient's tile (WT_CO x WT_COLS in the shader) and positions per pass (WT_P). */
const WT_CO = 16;
const WT_COLS = 32;
const WT_P = 32;
/** Workgroups the tiled weight gradient aims for, and its most splits (each split is a partial [Cout, Cin, KH, KW]). */
const WEIGHT_GRAD_TILED_TARGET_WORKGROUPS = 1024;
const WEIGHT_GRAD_TILED_MAX_SPLITS = 64;

/** Splits of the n * ho * wo positions for the tiled weight gradient: enough workgroups, each split at least 8 passes. Exported for tests. */
export function tiledWeightGradSplits(positions: number, tiles: number): { splits: number; chunk: number } {
  const most = Math.max(1, Math.min(WEIGHT_GRAD_TILED_MAX_SPLITS, Math.floor(positions / (8 * WT_P))));
  const wanted = Math.max(1, Math.min(most, Math.ceil(WEIGHT_GRAD_TILED_TARGET_WORKGROUPS / Math.max(tiles, 1))));
  const chunk = Math.ceil(Math.ceil(positions / wanted) / WT_P) * WT_P;
  return { splits: Math.ceil(positions / chunk), chunk };
}

/**
 * dW [cout, cin, kh, kw] = sum over n, oy, ox of gy[n, co, oy, ox] x[n, ci, ...]; masked taps exactly 0.
 * Split-K: each of `splits` chunks of the sum writes a partial, and conv_grad_sums adds them (with
 * the bias/cond sums in the same dispatch); one split writes the gradient directly.
 */
function runBackwardWeight(
  x: Tensor,
  gy: Tensor,
  g: Geometry,
  forceSplits?: number,
  sums?: SumsRequest,
  weight?: Tensor,
  variant: ConvVariant = selectedVariants.backwardWeight,
): { dw: Tensor; sums: SumsResult } {
  // A mask that keeps no tap (A on a 1x1 kernel without colour groups) has an all-zero gradient: the CPU kernel writes it.
  const tiled = variant === 'tiled' && keptTaps(g) > 0;
  const { splits, launchInto } = tiled ? tiledWeightGrad(x, gy, g, forceSplits) : cpuWeightGrad(x, gy, g, forceSplits);
  const shape = [g.cout, g.cin, g.kh, g.kw];
  // One split is the whole gradient: write it where the tape gathers it (no second pass, no copy).
  const part = splits === 1 && weight ? gradTarget(weight).view([1, ...shape]) : empty([splits, ...shape]);
  launchInto(part);
  if (splits === 1) {
    const dw = part.view(shape);
    part.dispose();
    return { dw, sums: sums ? gradSums(null, sums) : { perImage: null, total: null } };
  }
  // Second pass: one thread per weight sums its S partials (no workgroup barriers, unlike `sum`),
  // with the bias/cond sums in the same dispatch.
  const dw = weight ? gradTarget(weight).view(shape) : empty(shape);
  const result = gradSums({ partials: part, dw, splits }, sums ?? null);
  part.dispose();
  return { dw, sums: result };
}

interface WeightGradLaunch {
  splits: number;
  /** Records the kernel writing the partials [splits, cout, cin, kh, kw] into `part`. */
  launchInto: (part: Tensor) => void;
}

/** The CPU-shaped weight gradient (conv_backward_weight): registers only, split over rows (n, oy). */
function cpuWeightGrad(x: Tensor, gy: Tensor, g: Geometry, forceSplits?: number): WeightGradLaunch {
  const cb = channelBlock(g.cout, false);
  const cblocks = Math.ceil(g.cout / cb);
  // 1x1 kernels have one tap: block over 4 input channels instead of the kernel's columns.
  const pointwise = g.kh === 1 && g.kw === 1;
  // Input channels per thread otherwise (the shader's WCI): two, so each gradient load feeds 2 * KW FMAs.
  const wci = g.cin > 1 ? 2 : 1;
  const ciBlocks = Math.ceil(g.cin / (pointwise ? 4 : wci));
  // Threads for kept kernel rows only (the shader's KV): all of them, or those up to the centre.
  const keptRows = g.mask === MASK_CODE.none ? g.kh : Math.floor(g.kh / 2) + 1;
  const base = pointwise ? cblocks * ciBlocks : cblocks * ciBlocks * keptRows;
  const rows = g.n * g.ho;
  let { splits, chunkRows } = weightGradSplits(rows, g.wo, base);
  if (forceSplits) {
    chunkRows = Math.max(1, Math.ceil(rows / forceSplits));
    splits = Math.max(1, Math.ceil(rows / chunkRows));
  }
  const threads = splits * base;
  return {
    splits,
    launchInto: (part) =>
      launch(
        spec('backwardWeight', pointwise ? 'conv_backward_weight_1x1' : 'conv_backward_weight', { ...geometryConstants(g, cb), ...(pointwise ? {} : { WCI: wci }) }, ['read', 'read', 'rw']),
        [x.binding, gy.binding, part.binding],
        params(g, threads, cblocks, ciBlocks, rows, chunkRows),
        threadsGrid(threads, WG),
      ),
  };
}

/** The GPU-shaped weight gradient (conv_backward_weight_tiled): workgroup tiles, split over positions (n, oy, ox). */
function tiledWeightGrad(x: Tensor, gy: Tensor, g: Geometry, forceSplits?: number): WeightGradLaunch {
  const positions = g.n * g.ho * g.wo;
  const cblocks = Math.ceil(g.cout / WT_CO);
  const colBlocks = Math.ceil((g.cin * keptTaps(g)) / WT_COLS);
  let { splits, chunk } = tiledWeightGradSplits(positions, cblocks * colBlocks);
  if (forceSplits) {
    chunk = Math.ceil(Math.ceil(positions / forceSplits) / WT_P) * WT_P;
    splits = Math.ceil(positions / chunk);
  }
  return {
    splits,
    launchInto: (part) =>
      launch(
        spec('backwardWeightTiled', 'conv_backward_weight_tiled', geometryConstants(g, 1), ['read', 'read', 'rw']),
        [x.binding, gy.binding, part.binding],
        params(g, 0, cblocks, colBlocks, positions, chunk),
        grid1d(splits * cblocks * colBlocks),
      ),
  };
}

/**
 * One direction's kernel alone with a given variant (no autograd), for the variant chooser and
 * benchmarks: 'forward' is conv2d(x, w) (plain, no epilogue), 'backwardInput' the gradient w.r.t. x
 * and 'backwardWeight' the gradient w.r.t. w, both from gy [N, Cout, Ho, Wo].
 */
export function convKernelWithVariant(direction: ConvDirection, variant: ConvVariant, x: Tensor, w: Tensor, gy: Tensor, opts: Conv2dOptions = {}): Tensor {
  const g = conv2dGeometry('conv2d', x, w.shape, opts);
  if (direction === 'forward') return runForward(x, w, g, {}, variant);
  if (direction === 'backwardInput') return runBackwardInput(gy, w, g, undefined, variant);
  return runBackwardWeight(x, gy, g, undefined, undefined, undefined, variant).dw;
}

/** Test hook: the weight gradient with a given number of splits (1 = no split-K) and variant (default: the selected one). */
export function conv2dWeightGradForTest(x: Tensor, gy: Tensor, kernel: [number, number], opts: Conv2dOptions, splits: number, variant?: ConvVariant): Tensor {
  const g = conv2dGeometry('conv2dWeightGrad', x, [gy.shape[1], x.shape[1], kernel[0], kernel[1]], opts);
  return runBackwardWeight(x, gy, g, splits, undefined, undefined, variant).dw;
}

/** A gate's layout: x [N, 2C, rows, ...], trailing axes flattened into the row length. */
interface GateLayout {
  n: number;
  half: number;
  rowsIn: number;
  rowLength: number;
  rowsOut: number;
  rowStart: number;
}

function gateParams(l: GateLayout): Uint32Array {
  return new Params().u(l.n, l.half, l.rowsIn, l.rowLength).u(0, l.rowsOut, 0, l.n * l.half).u(l.rowStart, 0, 0, 0).u(0, 0, 0, 0).build();
}

/** Workgroups of WG along a plane's `positions`, planes (n x C) along y, folded into z past the limit. */
function planeGrid(positions: number, planes: number): [number, number, number] {
  if (Math.ceil(positions / WG) > MAX_WORKGROUPS_PER_DIM) throw new ShapeError('gate', `${positions} positions per channel exceed one dispatch`);
  const y = Math.min(planes, MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(positions / WG), y, Math.ceil(planes / y)];
}

function runGate(x: Tensor, l: GateLayout, cond?: Tensor): Tensor {
  const y = empty([l.n, l.half, ...(x.rank > 2 ? [l.rowsOut, ...x.shape.slice(3)] : [])]);
  launch(
    spec('forward', 'gate_forward', { HAS_COND: cond ? 1 : 0 }, ['read', 'rw', 'read']),
    [x.binding, y.binding, (cond ?? x).binding],
    gateParams(l),
    planeGrid(l.rowsOut * l.rowLength, l.n * l.half),
  );
  return y;
}

/** d pre-activation [x's shape] from dy (zero outside the band of rows). */
/** `prior`: x's gradient from its other users, added in the store (autograd's accumulation). */
function runGateBackward(gy: Tensor, x: Tensor, l: GateLayout, cond?: Tensor, prior: Tensor | null = null): Tensor {
  const dx = empty(x.shape);
  launch(
    spec('backwardInput', 'gate_backward', { HAS_COND: cond ? 1 : 0, HAS_PRIOR: prior ? 1 : 0 }, ['read', 'read', 'rw', 'read', 'read']),
    [gy.binding, x.binding, dx.binding, (cond ?? x).binding, (prior ?? gy).binding],
    gateParams(l),
    planeGrid(l.rowsIn * l.rowLength, l.n * l.half),
  );
  return dx;
}

/** The layout of a gate over all of x (as conv2d's fused gate). */
function fullGate(x: Tensor): GateLayout {
  const rowsIn = x.rank > 2 ? x.shape[2] : 1;
  const rowLength = x.shape.slice(3).reduce((a, b) => a * b, 1);
  return { n: x.shape[0], half: x.shape[1] / 2, rowsIn, rowLength, rowsOut: rowsIn, rowStart: 0 };
}

/** Threads per plane in the per-channel sums: 64 / (planes per pass), planes per pass the batch rounded up to a power of two (at most 64). */
export function channelSumLanes(n: number): number {
  let perPass = 1;
  while (perPass < Math.min(n, 64)) perPass *= 2;
  return 64 / perPass;
}

/** Per-channel sums of g [N, C, ...]: over every axis but 1 (`total`, a bias gradient [C]) and/or over the trailing axes (`perImage`, a cond gradient [N, C]). */
interface SumsRequest {
  g: Tensor;
  perImage: boolean;
  total: boolean;
  /** The bias whose gradient `total` is: it is written where the tape gathers that gradient. */
  bias?: Tensor;
  /** The cond whose gradient `perImage` is (likewise). */
  cond?: Tensor;
}

interface SumsResult {
  perImage: Tensor | null;
  total: Tensor | null;
}

/**
 * conv_grad_sums (shaders/conv_backward_weight.wgsl): the split-K weight gradient's second pass
 * (dw = sum of the `splits` partials) and/or per-channel sums, one dispatch for both: 64-thread
 * workgroups for the weights first, then one workgroup per channel.
 */
function gradSums(split: { partials: Tensor; dw: Tensor; splits: number } | null, sums: SumsRequest | null): SumsResult {
  const count = split ? split.dw.size : 0;
  const splitGroups = Math.ceil(count / WG);
  const [n, c] = sums ? sums.g.shape : [0, 0];
  const plane = sums ? sums.g.size / (n * c) : 0;
  const perImage = sums?.perImage ? (sums.cond ? gradTarget(sums.cond) : empty([n, c])) : null;
  const total = sums?.total ? (sums.bias ? gradTarget(sums.bias) : empty([c])) : null;
  // A separate scratch buffer per unused binding: one buffer in two bindings, one of them writable, is invalid.
  const scratches: Tensor[] = [];
  const or = (t: Tensor | null | undefined): Bindable => (t ?? scratches[scratches.push(scratch()) - 1]).binding;
  const constants = { PER_IMAGE: perImage ? 1 : 0, TOTAL: total ? 1 : 0, SUM_Q: channelSumLanes(Math.max(n, 1)) };
  launch(
    spec('backwardWeight', 'conv_grad_sums', constants, ['read', 'rw', 'read', 'rw', 'rw']),
    [or(split?.partials), or(split?.dw), or(sums?.g), or(total), or(perImage)],
    new Params().u(n, c, plane, 0).u(0, 0, 0, count).u(0, 0, splitGroups, 0).u(split?.splits ?? 0, 0, 0, 0).build(),
    grid1d(splitGroups + c),
  );
  for (const s of scratches) s.dispose();
  return { perImage, total };
}

/** Per-channel sums of g [N, C, ...] alone, in one dispatch (the bias and/or cond gradient). Exported for tests and benchmarks. */
export function channelSums(g: Tensor, want: { perImage: boolean; total: boolean; cond?: Tensor }): SumsResult {
  return gradSums(null, { g, ...want });
}

// ---- shape checks -------------------------------------------------------------------------------------

function checkF32(op: string, name: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new ShapeError(op, `${name} ${shapeString(t.shape)} must be f32, got ${t.dtype}`);
}

function isNonNegInt(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

function padsOf(op: string, padding: ConvPadding | undefined): [number, number, number, number] {
  const pads: [number, number, number, number] =
    padding === undefined ? [0, 0, 0, 0] : typeof padding === 'number' ? [padding, padding, padding, padding] : [padding[0], padding[1], padding[2], padding[3]];
  if (typeof padding !== 'number' && padding !== undefined && padding.length !== 4) {
    throw new ShapeError(op, `padding must be a number or [top, bottom, left, right], got [${padding.join(',')}]`);
  }
  // Negative padding crops (every kernel bounds-checks its input reads, so it costs nothing).
  if (!pads.every(Number.isInteger)) throw new ShapeError(op, `padding must be integers, got [${pads.join(',')}]`);
  return pads;
}

function checkStride(op: string, stride: number): void {
  if (stride !== 1 && stride !== 2) throw new ShapeError(op, `stride must be 1 or 2, got ${stride}`);
}

function checkKernel(op: string, wShape: readonly number[]): void {
  const [, , kh, kw] = wShape;
  if (!(kh >= 1 && kh <= 7 && kw >= 1 && kw <= 7 && Number.isInteger(kh) && Number.isInteger(kw))) {
    throw new ShapeError(op, `kernel ${kh}x${kw} (weight ${shapeString(wShape)}) is not supported: sizes 1..7`);
  }
}

function conv2dGeometry(op: string, x: Tensor, wShape: readonly number[], opts: Conv2dOptions): Geometry {
  if (x.rank !== 4) throw new ShapeError(op, `input ${shapeString(x.shape)} must be NCHW (rank 4)`);
  if (wShape.length !== 4) throw new ShapeError(op, `weight ${shapeString(wShape)} must be [Cout, Cin, kh, kw]`);
  const [n, cin, h, w] = x.shape;
  const [cout, wcin, kh, kw] = wShape;
  if (wcin !== cin) {
    throw new ShapeError(op, `input ${shapeString(x.shape)} has ${cin} channels but weight ${shapeString(wShape)} expects ${wcin}`);
  }
  checkKernel(op, wShape);
  const stride = opts.stride ?? 1;
  checkStride(op, stride);
  const [padT, padB, padL, padR] = padsOf(op, opts.padding);
  const ho = Math.floor((h + padT + padB - kh) / stride) + 1;
  const wo = Math.floor((w + padL + padR - kw) / stride) + 1;
  if (ho < 1 || wo < 1 || cout < 1 || n < 1) {
    throw new ShapeError(op, `input ${shapeString(x.shape)} with weight ${shapeString(wShape)}, stride ${stride}, padding [${[padT, padB, padL, padR].join(',')}] gives an empty output ${ho}x${wo}`);
  }
  let mask: number = MASK_CODE.none;
  let groups = 1;
  if (opts.mask) {
    const m = opts.mask;
    if (m.type !== 'A' && m.type !== 'B' && m.type !== 'vstack') {
      throw new ShapeError(op, `mask type must be 'A', 'B' or 'vstack', got '${String(m.type)}' (weight ${shapeString(wShape)})`);
    }
    mask = MASK_CODE[m.type];
    groups = m.groups ?? 1;
    if (!Number.isInteger(groups) || groups < 1) {
      throw new ShapeError(op, `mask groups must be a positive integer, got ${groups} (weight ${shapeString(wShape)})`);
    }
    if (groups > 1 && m.type === 'vstack') {
      throw new ShapeError(op, `mask 'vstack' takes no colour groups, got groups=${groups} (weight ${shapeString(wShape)})`);
    }
    // Groups need not divide the channel counts: a channel's group is its index mod groups, as in the
    // reference (whose 64- and 128-wide masked layers have 3 colour groups).
  }
  return { n, cin, h, w, cout, ho, wo, kh, kw, stride, padT, padL, mask, groups };
}

// ---- ops ------------------------------------------------------------------------------------------------

/**
 * 2-D convolution (cross-correlation), NCHW, w [Cout, Cin, kh, kw]; masks, stride, padding and the
 * epilogue (bias, gate, residual) run in one kernel. Output [N, gate ? Cout/2 : Cout, Ho, Wo] with
 * Ho = floor((H + padT + padB - kh) / stride) + 1.
 */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  checkF32(op, 'input', x);
  checkF32(op, 'weight', w);
  const g = conv2dGeometry(op, x, w.shape, opts);
  const gate = opts.gate ?? false;
  if (gate && g.cout % 2 !== 0) {
    throw new ShapeError(op, `gate needs an even number of output channels, weight ${shapeString(w.shape)} has ${g.cout}`);
  }
  const preShape = [g.n, g.cout, g.ho, g.wo];
  const outShape = [g.n, gate ? g.cout / 2 : g.cout, g.ho, g.wo];
  const { bias, residual, preResidual, cond } = opts;
  const context = `(input ${shapeString(x.shape)}, weight ${shapeString(w.shape)})`;
  if (bias) {
    checkF32(op, 'bias', bias);
    if (bias.rank !== 1 || bias.shape[0] !== g.cout) throw new ShapeError(op, `bias ${shapeString(bias.shape)} must be [${g.cout}] for weight ${shapeString(w.shape)}`);
  }
  if (residual) {
    checkF32(op, 'residual', residual);
    if (residual.rank !== 4 || residual.shape.some((d, i) => d !== outShape[i])) {
      throw new ShapeError(op, `residual ${shapeString(residual.shape)} must match the output ${shapeString(outShape)} ${context}`);
    }
  }
  if (preResidual) {
    checkF32(op, 'preResidual', preResidual);
    if (residual) throw new ShapeError(op, `residual and preResidual together are not supported ${context}`);
    if (preResidual.rank !== 4 || preResidual.shape.some((d, i) => d !== preShape[i])) {
      throw new ShapeError(op, `preResidual ${shapeString(preResidual.shape)} must match the pre-activation ${shapeString(preShape)} ${context}`);
    }
  }
  if (cond) {
    checkF32(op, 'cond', cond);
    if (cond.rank !== 2 || cond.shape[0] !== g.n || cond.shape[1] !== g.cout) {
      throw new ShapeError(op, `cond ${shapeString(cond.shape)} must be [${g.n}, ${g.cout}] (batch, output channels) ${context}`);
    }
  }
  const inputs: Tensor[] = [x, w];
  if (bias) inputs.push(bias);
  if (residual) inputs.push(residual);
  if (preResidual) inputs.push(preResidual);
  if (cond) inputs.push(cond);
  const needsGrad = engine().gradEnabled && inputs.some((t) => t.requiresGrad);
  const pre = gate && needsGrad ? empty(preShape) : undefined;
  const y = runForward(x, w, g, { bias, residual, preResidual, cond, gate, pre });

  // Forward above, backward here: the gate's derivative (pre holds bias, pre-residual and cond
  // already), then the transposed conv, the weight gradient and per-channel sums.
  // x's gradient from its other users is added by the input-gradient kernel (slot 0 accumulates).
  return record(op, y, inputs, (gy, prior) => {
    const dpre = pre ? runGateBackward(gy, pre, fullGate(pre)) : gy;
    // d cond = sums over (h, w) per image, d bias over (n, h, w): in the weight gradient's last
    // dispatch (or one of their own).
    const wantCond = cond?.requiresGrad ?? false;
    const wantBias = bias?.requiresGrad ?? false;
    const request = wantCond || wantBias ? { g: dpre, perImage: wantCond, total: wantBias, bias: bias ?? undefined, cond: cond ?? undefined } : undefined;
    const dx = x.requiresGrad ? runBackwardInput(dpre, w, g, undefined, selectedVariants.backwardInput, prior?.[0] ?? null) : null;
    let dw: Tensor | null = null;
    let sums: SumsResult | null = null;
    if (w.requiresGrad) ({ dw, sums } = runBackwardWeight(x, dpre, g, undefined, request, w));
    else if (request) sums = gradSums(null, request);
    const dcond = sums?.perImage ?? null;
    const grads: (Tensor | null)[] = [dx, dw];
    if (bias) grads.push(sums?.total ?? null);
    if (residual) grads.push(residual.requiresGrad ? gy : null);
    if (preResidual) grads.push(preResidual.requiresGrad ? dpre : null);
    if (cond) grads.push(dcond);
    return grads;
  }, { accumulates: [0] });
}

/**
 * Transposed convolution, w [Cin, Cout, kh, kw] (PyTorch layout). Output [N, Cout, Ho, Wo] with
 * Ho = (H - 1) * stride - 2 * padding + kh + outputPadding (k=3, s=2, p=1, op=1 doubles the size).
 */
export function convTranspose2d(x: Tensor, w: Tensor, opts: ConvTranspose2dOptions = {}): Tensor {
  const op = 'convTranspose2d';
  checkF32(op, 'input', x);
  checkF32(op, 'weight', w);
  if (x.rank !== 4) throw new ShapeError(op, `input ${shapeString(x.shape)} must be NCHW (rank 4)`);
  if (w.rank !== 4) throw new ShapeError(op, `weight ${shapeString(w.shape)} must be [Cin, Cout, kh, kw]`);
  const [n, cin, h, wd] = x.shape;
  const [wcin, cout, kh, kw] = w.shape;
  if (wcin !== cin) {
    throw new ShapeError(op, `input ${shapeString(x.shape)} has ${cin} channels but weight ${shapeString(w.shape)} expects ${wcin}`);
  }
  checkKernel(op, w.shape);
  const stride = opts.stride ?? 1;
  checkStride(op, stride);
  const padding = opts.padding ?? 0;
  const outputPadding = opts.outputPadding ?? 0;
  if (!isNonNegInt(padding)) throw new ShapeError(op, `padding must be a non-negative integer, got ${padding}`);
  if (!isNonNegInt(outputPadding) || outputPadding >= stride) {
    throw new ShapeError(op, `outputPadding must be an integer in [0, stride=${stride}), got ${outputPadding}`);
  }
  const ho = (h - 1) * stride - 2 * padding + kh + outputPadding;
  const wo = (wd - 1) * stride - 2 * padding + kw + outputPadding;
  if (ho < 1 || wo < 1) {
    throw new ShapeError(op, `input ${shapeString(x.shape)} with weight ${shapeString(w.shape)}, stride ${stride}, padding ${padding} gives an empty output ${ho}x${wo}`);
  }
  const { bias } = opts;
  if (bias) {
    checkF32(op, 'bias', bias);
    if (bias.rank !== 1 || bias.shape[0] !== cout) throw new ShapeError(op, `bias ${shapeString(bias.shape)} must be [${cout}] for weight ${shapeString(w.shape)}`);
  }
  // The equivalent forward convolution maps the output [n, cout, ho, wo] to x [n, cin, h, w] with
  // weight [cin, cout, kh, kw]: this op is its backward-data kernel, its backward is that convolution.
  const g: Geometry = { n, cin: cout, h: ho, w: wo, cout: cin, ho: h, wo: wd, kh, kw, stride, padT: padding, padL: padding, mask: 0, groups: 1 };
  const y = runBackwardInput(x, w, g, bias);
  const inputs: Tensor[] = bias ? [x, w, bias] : [x, w];
  return record(op, y, inputs, (gy) => {
    const dx = x.requiresGrad ? runForward(gy, w, g) : null;
    // dW[ci, co] = sum x[n, ci, iy, ix] gy[n, co, iy*s - p + ky, ...]: the weight kernel with the
    // roles of the forward convolution (its input is gy, its output gradient is x); the bias sums
    // (over gy) ride in its last dispatch.
    const request = bias?.requiresGrad ? { g: gy, perImage: false, total: true, bias } : undefined;
    let dw: Tensor | null = null;
    let sums: SumsResult | null = null;
    if (w.requiresGrad) ({ dw, sums } = runBackwardWeight(gy, x, g, undefined, request, w));
    else if (request) sums = gradSums(null, request);
    const grads: (Tensor | null)[] = [dx, dw];
    if (bias) grads.push(sums?.total ?? null);
    return grads;
  });
}

export interface GateOptions {
  /** [N, 2C]: added to the pre-activation at every position of image n (z's gate terms). */
  cond?: Tensor;
  /** Gate only rows [start, start + count) of axis 2 (x of rank 4); the rest get zero gradient. */
  rows?: readonly [start: number, count: number];
}

/**
 * Gated activation over interleaved channels of axis 1: y[:, c] = tanh(x[:, 2c] + cond[:, 2c]) *
 * sigmoid(x[:, 2c+1] + cond[:, 2c+1]), on a band of rows when asked (a vertical stack's current
 * rows of a map that also holds the row above: one kernel instead of a slice, an add and the gate).
 */
export function gate(x: Tensor, opts: GateOptions = {}): Tensor {
  checkF32('gate', 'input', x);
  if (x.rank < 2 || x.shape[1] % 2 !== 0) {
    throw new ShapeError('gate', `input ${shapeString(x.shape)} needs an even number of channels on axis 1`);
  }
  const layout = fullGate(x);
  const { cond, rows } = opts;
  if (rows) {
    const [start, count] = rows;
    if (x.rank !== 4 || !isNonNegInt(start) || !Number.isInteger(count) || count < 1 || start + count > x.shape[2]) {
      throw new ShapeError('gate', `rows [${start}, ${start}+${count}) must be a non-empty band of axis 2 of a rank-4 input, got ${shapeString(x.shape)}`);
    }
    layout.rowStart = start;
    layout.rowsOut = count;
  }
  if (cond) {
    checkF32('gate', 'cond', cond);
    if (cond.rank !== 2 || cond.shape[0] !== x.shape[0] || cond.shape[1] !== x.shape[1]) {
      throw new ShapeError('gate', `cond ${shapeString(cond.shape)} must be [${x.shape[0]}, ${x.shape[1]}] for input ${shapeString(x.shape)}`);
    }
  }
  const y = runGate(x, layout, cond);
  const inputs = cond ? [x, cond] : [x];
  // x's gradient so far is added in the gate's kernel, unless cond wants a gradient: d cond sums the
  // gate's own gradient, so then the tape adds x's as usual.
  const wantCond = cond?.requiresGrad ?? false;
  return record('gate', y, inputs, (gy, prior) => {
    const dx = runGateBackward(gy, x, layout, cond, wantCond ? null : (prior?.[0] ?? null));
    return cond ? [dx, wantCond ? channelSums(dx, { perImage: true, total: false, cond }).perImage : null] : [dx];
  }, { accumulates: wantCond ? [] : [0] });
}
