// The conv2d op case shared by the conv tests: random inputs of a shape and options, forward against
// the float64 reference and backward against its finite differences (check.ts).
import * as E from '../../src/engine';
import { refConv2d } from '../../src/engine/reference/conv';
import { checkOp } from './check';

export interface ConvShape {
  n?: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
}

export interface CaseOptions {
  stride?: 1 | 2;
  padding?: number | [number, number, number, number];
  bias?: boolean;
  residual?: boolean;
  /** A pre-activation addend (before the gate). */
  preResidual?: boolean;
  /** Per-(image, channel) terms [N, Cout] (z's gate terms). */
  cond?: boolean;
  gate?: boolean;
  mask?: E.ConvMask;
}

/** The output shape [N, Cout (halved by a gate), Ho, Wo]. */
export function outSize(s: ConvShape, o: CaseOptions): [number, number, number, number] {
  const p = o.padding ?? 0;
  const [pt, pb, pl, pr] = typeof p === 'number' ? [p, p, p, p] : p;
  const st = o.stride ?? 1;
  const ho = Math.floor((s.h + pt + pb - s.kh) / st) + 1;
  const wo = Math.floor((s.w + pl + pr - s.kw) / st) + 1;
  return [s.n ?? 2, o.gate ? s.cout / 2 : s.cout, ho, wo];
}

/** checkOp over conv2d: inputs x, w, then bias, residual, pre-residual and cond when asked for. */
export function convCase(name: string, s: ConvShape, o: CaseOptions, seed = 1): Promise<void> {
  const n = s.n ?? 2;
  const inputs = [{ shape: [n, s.cin, s.h, s.w] }, { shape: [s.cout, s.cin, s.kh, s.kw] }];
  const extras = (['bias', 'residual', 'preResidual', 'cond'] as const).filter((k) => o[k]);
  const [, , ho, wo] = outSize(s, o);
  const shapes = { bias: [s.cout], residual: outSize(s, o), preResidual: [n, s.cout, ho, wo], cond: [n, s.cout] };
  for (const k of extras) inputs.push({ shape: shapes[k] });
  const split = <T>(rest: T[]): { bias?: T; residual?: T; preResidual?: T; cond?: T } =>
    Object.fromEntries(extras.map((k, i) => [k, rest[i]]));
  const base = { stride: o.stride, padding: o.padding, mask: o.mask, gate: o.gate };
  return checkOp({
    name,
    inputs,
    seed,
    gpu: (x, w, ...rest) => E.conv2d(x, w, { ...base, ...split(rest) }),
    ref: (x, w, ...rest) => refConv2d(x, w, { ...base, ...split(rest) }),
  });
}
