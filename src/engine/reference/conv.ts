// Float64 references for the convolution family (src/engine/ops/conv.ts): plain loops, no tiling.
// Forward and explicit backward functions (a CPU-reference training test uses the backward ones).
import { nd, type NDArray } from './ndarray';

export interface RefConvMask {
  type: 'A' | 'B' | 'vstack';
  groups?: number;
}

export interface RefConv2dOptions {
  stride?: number;
  padding?: number | readonly [number, number, number, number];
  bias?: NDArray;
  mask?: RefConvMask;
  residual?: NDArray;
  /** Added to the pre-activation, [N, Cout, Ho, Wo]. */
  preResidual?: NDArray;
  /** [N, Cout], added to the pre-activation at every position of image n. */
  cond?: NDArray;
  gate?: boolean;
}

export interface RefConvTranspose2dOptions {
  stride?: number;
  padding?: number;
  outputPadding?: number;
  bias?: NDArray;
}

function pads(padding: RefConv2dOptions['padding']): [number, number, number, number] {
  if (padding === undefined) return [0, 0, 0, 0];
  if (typeof padding === 'number') return [padding, padding, padding, padding];
  return [padding[0], padding[1], padding[2], padding[3]];
}

/** Does the mask keep tap (ky, kx) from input channel ci to output channel co? */
export function refMaskKeeps(mask: RefConvMask | undefined, kh: number, kw: number, ky: number, kx: number, ci: number, co: number): boolean {
  if (!mask) return true;
  const cy = Math.floor(kh / 2);
  const cx = Math.floor(kw / 2);
  if (mask.type === 'vstack') return ky <= cy;
  if (ky < cy) return true;
  if (ky > cy) return false;
  if (kx < cx) return true;
  if (kx > cx) return false;
  const groups = mask.groups ?? 1;
  const gi = ci % groups;
  const go = co % groups;
  return mask.type === 'A' ? gi < go : gi <= go;
}

export const refSigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** Output positions o in [0, outSize) whose input o*s + k - pad lies in [0, inSize). */
function validRange(inSize: number, outSize: number, s: number, k: number, pad: number): [number, number] {
  const lo = Math.max(0, Math.ceil((pad - k) / s));
  const hi = Math.min(outSize, Math.floor((inSize - 1 + pad - k) / s) + 1);
  return [lo, hi];
}

/** 1 where the mask keeps tap [co, ci, ky, kx] of a weight of shape [cout, cin, kh, kw]. */
function maskTable(mask: RefConvMask | undefined, cout: number, cin: number, kh: number, kw: number): Uint8Array {
  const keep = new Uint8Array(cout * cin * kh * kw);
  for (let co = 0; co < cout; co++)
    for (let ci = 0; ci < cin; ci++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++) keep[((co * cin + ci) * kh + ky) * kw + kx] = refMaskKeeps(mask, kh, kw, ky, kx, ci, co) ? 1 : 0;
  return keep;
}

interface RefGeometry {
  n: number; cin: number; h: number; w: number; cout: number; ho: number; wo: number;
  kh: number; kw: number; s: number; pt: number; pl: number; keep: Uint8Array;
}

function convGeometry(x: NDArray, w: NDArray, opts: RefConv2dOptions, op: string): RefGeometry {
  const [n, cin, h, wd] = x.shape;
  const [cout, wcin, kh, kw] = w.shape;
  if (wcin !== cin) throw new Error(`${op}: input [${x.shape}] vs weight [${w.shape}]`);
  const s = opts.stride ?? 1;
  const [pt, pb, pl, pr] = pads(opts.padding);
  const ho = Math.floor((h + pt + pb - kh) / s) + 1;
  const wo = Math.floor((wd + pl + pr - kw) / s) + 1;
  return { n, cin, h, w: wd, cout, ho, wo, kh, kw, s, pt, pl, keep: maskTable(opts.mask, cout, cin, kh, kw) };
}

/**
 * Visits every kept tap (b, co, ci, ky, kx) and, for it, every output position whose input is inside
 * the image: visit(yIndex, xIndex, wIndex). Masked taps and padding are skipped.
 */
function forEachProduct(g: RefGeometry, visit: (yi: number, xi: number, wi: number) => void): void {
  for (let b = 0; b < g.n; b++)
    for (let co = 0; co < g.cout; co++)
      for (let ci = 0; ci < g.cin; ci++)
        for (let ky = 0; ky < g.kh; ky++) {
          const [oy0, oy1] = validRange(g.h, g.ho, g.s, ky, g.pt);
          for (let kx = 0; kx < g.kw; kx++) {
            const wi = ((co * g.cin + ci) * g.kh + ky) * g.kw + kx;
            if (!g.keep[wi]) continue;
            const [ox0, ox1] = validRange(g.w, g.wo, g.s, kx, g.pl);
            for (let oy = oy0; oy < oy1; oy++) {
              const yRow = ((b * g.cout + co) * g.ho + oy) * g.wo;
              const xRow = ((b * g.cin + ci) * g.h + oy * g.s + ky - g.pt) * g.w + kx - g.pl;
              for (let ox = ox0; ox < ox1; ox++) visit(yRow + ox, xRow + ox * g.s, wi);
            }
          }
        }
}

/** The pre-activation (conv + bias + pre-residual + cond; no gate, no residual): [N, Cout, Ho, Wo]. */
export function refConv2dPre(x: NDArray, w: NDArray, opts: RefConv2dOptions = {}): NDArray {
  const g = convGeometry(x, w, opts, 'refConv2d');
  const y = nd([g.n, g.cout, g.ho, g.wo]);
  const yd = y.data;
  const xd = x.data;
  const wd = w.data;
  forEachProduct(g, (yi, xi, wi) => {
    yd[yi] += xd[xi] * wd[wi];
  });
  const plane = g.ho * g.wo;
  const { bias, preResidual, cond } = opts;
  if (preResidual && preResidual.data.length !== yd.length) throw new Error(`refConv2d: preResidual [${preResidual.shape}] vs pre-activation [${y.shape}]`);
  if (cond && cond.data.length !== g.n * g.cout) throw new Error(`refConv2d: cond [${cond.shape}] vs [${g.n}, ${g.cout}]`);
  for (let i = 0; i < yd.length; i++) {
    const nc = Math.floor(i / plane);
    if (bias) yd[i] += bias.data[nc % g.cout];
    if (preResidual) yd[i] += preResidual.data[i];
    if (cond) yd[i] += cond.data[nc];
  }
  return y;
}

export interface RefGateOptions {
  /** [N, 2C], added before the gate at every position of image n. */
  cond?: NDArray;
  /** Only rows [start, start + count) of axis 2. */
  rows?: readonly [number, number];
}

/** x + cond (broadcast over positions), rows [start, start + count) of axis 2: the gate's pre-activation. */
function gateInput(x: NDArray, opts: RefGateOptions): NDArray {
  const [n, c2] = x.shape;
  const rowsIn = x.shape.length > 2 ? x.shape[2] : 1;
  const rowLength = x.shape.slice(3).reduce((a, b) => a * b, 1);
  const [start, count] = opts.rows ?? [0, rowsIn];
  const shape = x.shape.length > 2 ? [n, c2, count, ...x.shape.slice(3)] : [n, c2];
  const out = nd(shape);
  for (let nc = 0; nc < n * c2; nc++)
    for (let r = 0; r < count; r++)
      for (let i = 0; i < rowLength; i++) {
        out.data[(nc * count + r) * rowLength + i] = x.data[(nc * rowsIn + start + r) * rowLength + i] + (opts.cond ? opts.cond.data[nc] : 0);
      }
  return out;
}

/** The gate with z's terms on a band of rows (gate(x, { cond, rows }) of the engine). */
export function refGateWith(x: NDArray, opts: RefGateOptions): NDArray {
  return refGate(gateInput(x, opts));
}

/** Gated activation over interleaved channels of axis 1. */
export function refGate(x: NDArray): NDArray {
  const [n, c2] = x.shape;
  const sp = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const c = c2 / 2;
  const y = nd([n, c, ...x.shape.slice(2)]);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < sp; i++) {
        const a = x.data[(b * c2 + 2 * k) * sp + i];
        const g = x.data[(b * c2 + 2 * k + 1) * sp + i];
        y.data[(b * c + k) * sp + i] = Math.tanh(a) * refSigmoid(g);
      }
  return y;
}

/** dL/dx of the gate given dL/dy. */
export function refGateBackward(x: NDArray, dy: NDArray): NDArray {
  const [n, c2] = x.shape;
  const sp = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const c = c2 / 2;
  const dx = nd(x.shape);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < sp; i++) {
        const ia = (b * c2 + 2 * k) * sp + i;
        const ig = ia + sp;
        const t = Math.tanh(x.data[ia]);
        const sg = refSigmoid(x.data[ig]);
        const g = dy.data[(b * c + k) * sp + i];
        dx.data[ia] = g * sg * (1 - t * t);
        dx.data[ig] = g * t * sg * (1 - sg);
      }
  return dx;
}

/** conv2d with masks, stride, padding, bias, gate and residual. */
export function refConv2d(x: NDArray, w: NDArray, opts: RefConv2dOptions = {}): NDArray {
  let y = refConv2dPre(x, w, opts);
  if (opts.gate) y = refGate(y);
  if (opts.residual) {
    const r = opts.residual;
    if (r.data.length !== y.data.length) throw new Error(`refConv2d: residual [${r.shape}] vs output [${y.shape}]`);
    for (let i = 0; i < y.data.length; i++) y.data[i] += r.data[i];
  }
  return y;
}

export interface RefConv2dGrads {
  dx: NDArray;
  dw: NDArray;
  dbias: NDArray;
  dresidual: NDArray;
  /** The pre-activation's gradient. */
  dpreResidual: NDArray;
  /** [N, Cout]: the pre-activation's gradient summed over positions. */
  dcond: NDArray;
}

/** Gradients of conv2d given dL/dy (masked taps get exactly zero weight gradient). */
export function refConv2dBackward(x: NDArray, w: NDArray, dy: NDArray, opts: RefConv2dOptions = {}): RefConv2dGrads {
  const g = convGeometry(x, w, opts, 'refConv2dBackward');
  const dpre = opts.gate ? refGateBackward(refConv2dPre(x, w, opts), dy) : dy;
  const dx = nd(x.shape);
  const dw = nd(w.shape);
  const dbias = nd([g.cout]);
  const dcond = nd([g.n, g.cout]);
  const plane = g.ho * g.wo;
  for (let i = 0; i < dpre.data.length; i++) {
    dbias.data[Math.floor(i / plane) % g.cout] += dpre.data[i];
    dcond.data[Math.floor(i / plane)] += dpre.data[i];
  }
  const gd = dpre.data;
  forEachProduct(g, (yi, xi, wi) => {
    dx.data[xi] += gd[yi] * w.data[wi];
    dw.data[wi] += gd[yi] * x.data[xi];
  });
  const copy = (a: NDArray): NDArray => ({ shape: [...a.shape], data: Float64Array.from(a.data) });
  return { dx, dw, dbias, dresidual: copy(dy), dpreResidual: copy(dpre), dcond };
}

function transposeGeometry(x: NDArray, w: NDArray, opts: RefConvTranspose2dOptions): { ho: number; wo: number; s: number; p: number } {
  const [, , h, wd] = x.shape;
  const [, , kh, kw] = w.shape;
  const s = opts.stride ?? 1;
  const p = opts.padding ?? 0;
  const op = opts.outputPadding ?? 0;
  return { ho: (h - 1) * s - 2 * p + kh + op, wo: (wd - 1) * s - 2 * p + kw + op, s, p };
}

/** Transposed convolution, w [Cin, Cout, kh, kw]: each input pixel scatters w * x into the output. */
export function refConvTranspose2d(x: NDArray, w: NDArray, opts: RefConvTranspose2dOptions = {}): NDArray {
  const [n, cin, h, wd] = x.shape;
  const [wcin, cout, kh, kw] = w.shape;
  if (wcin !== cin) throw new Error(`refConvTranspose2d: input [${x.shape}] vs weight [${w.shape}]`);
  const { ho, wo, s, p } = transposeGeometry(x, w, opts);
  const y = nd([n, cout, ho, wo]);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++) {
      const bias = opts.bias ? opts.bias.data[co] : 0;
      for (let i = 0; i < ho * wo; i++) y.data[(b * cout + co) * ho * wo + i] = bias;
    }
  for (let b = 0; b < n; b++)
    for (let ci = 0; ci < cin; ci++)
      for (let iy = 0; iy < h; iy++)
        for (let ix = 0; ix < wd; ix++) {
          const v = x.data[((b * cin + ci) * h + iy) * wd + ix];
          for (let co = 0; co < cout; co++)
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * s - p + ky;
              if (oy < 0 || oy >= ho) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * s - p + kx;
                if (ox < 0 || ox >= wo) continue;
                y.data[((b * cout + co) * ho + oy) * wo + ox] += v * w.data[((ci * cout + co) * kh + ky) * kw + kx];
              }
            }
        }
  return y;
}

export interface RefConvTranspose2dGrads {
  dx: NDArray;
  dw: NDArray;
  dbias: NDArray;
}

/** Gradients of convTranspose2d given dL/dy. */
export function refConvTranspose2dBackward(x: NDArray, w: NDArray, dy: NDArray, opts: RefConvTranspose2dOptions = {}): RefConvTranspose2dGrads {
  const [n, cin, h, wd] = x.shape;
  const [, cout, kh, kw] = w.shape;
  const { ho, wo, s, p } = transposeGeometry(x, w, opts);
  const dx = nd(x.shape);
  const dw = nd(w.shape);
  const dbias = nd([cout]);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++)
      for (let i = 0; i < ho * wo; i++) dbias.data[co] += dy.data[(b * cout + co) * ho * wo + i];
  for (let b = 0; b < n; b++)
    for (let ci = 0; ci < cin; ci++)
      for (let iy = 0; iy < h; iy++)
        for (let ix = 0; ix < wd; ix++) {
          const xi = ((b * cin + ci) * h + iy) * wd + ix;
          for (let co = 0; co < cout; co++)
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * s - p + ky;
              if (oy < 0 || oy >= ho) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * s - p + kx;
                if (ox < 0 || ox >= wo) continue;
                const g = dy.data[((b * cout + co) * ho + oy) * wo + ox];
                const wi = ((ci * cout + co) * kh + ky) * kw + kx;
                dx.data[xi] += g * w.data[wi];
                dw.data[wi] += g * x.data[xi];
              }
            }
        }
  return { dx, dw, dbias };
}
