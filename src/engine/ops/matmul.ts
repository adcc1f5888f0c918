// Matrix multiply and the linear layer (shaders/matmul.wgsl). One register-blocked kernel serves the
// forward and both backward products through its transpose flags.
import matmulWgsl from '../../../shaders/matmul.wgsl?raw';
import { record } from '../autograd';
import { Params, launch } from '../kernels';
import { empty, Tensor, ShapeError, shapeString } from '../tensor';
import { sum } from './reduce';
import type { KernelSpec } from '../../gpu/context';

export interface MatmulOptions {
  /** Use A transposed: A is stored [K, M] (or [batch, K, M]). */
  transA?: boolean;
  /** Use B transposed: B is stored [N, K] (or [batch, N, K]). */
  transB?: boolean;
}

/** Launch configuration of the matmul kernel: threads per workgroup along N and M (each thread 4x4 outputs). */
export interface MatmulVariant {
  wgX: number;
  wgY: number;
}

/** Variants a benchmark can compare; the first is the default. */
export const MATMUL_VARIANTS: readonly MatmulVariant[] = [
  { wgX: 8, wgY: 8 },
  { wgX: 16, wgY: 16 },
  { wgX: 16, wgY: 4 },
  { wgX: 4, wgY: 16 },
  { wgX: 64, wgY: 1 },
  { wgX: 16, wgY: 1 },
];

let defaultVariant: MatmulVariant = MATMUL_VARIANTS[0];

/** Chooses the launch configuration used by matmul and linear from now on (benchmarks, tuning). */
export function setMatmulVariant(variant: MatmulVariant): void {
  defaultVariant = variant;
}

/** Floating-point operations of a (batched) matmul: 2*M*N*K per batch item. */
export function matmulFlops(m: number, n: number, k: number, batch = 1): number {
  return 2 * m * n * k * batch;
}

interface Dims {
  batch: number;
  m: number;
  n: number;
  k: number;
  aBatched: boolean;
  bBatched: boolean;
}

function dims(op: string, a: Tensor, b: Tensor, transA: boolean, transB: boolean): Dims {
  const bad = (why: string): ShapeError =>
    new ShapeError(op, `${why}: a ${shapeString(a.shape)}${transA ? '^T' : ''} x b ${shapeString(b.shape)}${transB ? '^T' : ''}`);
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw bad('expects f32 tensors');
  if (a.rank < 2 || a.rank > 3 || b.rank < 2 || b.rank > 3) throw bad('expects 2-D or batched 3-D operands');
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar;
  const ka = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (ka !== kb) throw bad(`inner dimensions differ (${ka} vs ${kb})`);
  const aBatched = a.rank === 3;
  const bBatched = b.rank === 3;
  if (aBatched && bBatched && a.shape[0] !== b.shape[0]) throw bad('batch sizes differ');
  const batch = aBatched ? a.shape[0] : bBatched ? b.shape[0] : 1;
  return { batch, m, n, k: ka, aBatched, bBatched };
}

/** The kernel variant for these flags and shapes (exported for benchmarks and prewarming). */
export function matmulSpec(
  m: number,
  n: number,
  k: number,
  opts: MatmulOptions & { bias?: boolean; variant?: MatmulVariant } = {},
): KernelSpec {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const variant = opts.variant ?? defaultVariant;
  return {
    name: 'matmul.wgsl',
    code: matmulWgsl,
    entry: 'main',
    constants: {
      TRANS_A: transA ? 1 : 0,
      TRANS_B: transB ? 1 : 0,
      // vec4 loads need the operand's contiguous axis to be a multiple of 4.
      VEC_A: (transA ? m : k) % 4 === 0 ? 1 : 0,
      VEC_B: (transB ? k : n) % 4 === 0 ? 1 : 0,
      HAS_BIAS: opts.bias ? 1 : 0,
      WG_X: variant.wgX,
      WG_Y: variant.wgY,
    },
    bindings: ['read', 'read', 'read', 'rw'],
  };
}

/** Launches the kernel without recording a gradient. */
function matmulKernel(a: Tensor, b: Tensor, transA: boolean, transB: boolean, bias: Tensor | null, op: string, variant?: MatmulVariant): Tensor {
  const d = dims(op, a, b, transA, transB);
  const batched = d.aBatched || d.bBatched;
  const y = empty(batched ? [d.batch, d.m, d.n] : [d.m, d.n]);
  const v = variant ?? defaultVariant;
  const params = new Params()
    .u(d.m, d.n, d.k, d.batch)
    .u(d.aBatched ? d.m * d.k : 0, d.bBatched ? d.k * d.n : 0, d.m * d.n, 0)
    .build();
  const spec = matmulSpec(d.m, d.n, d.k, { transA, transB, bias: bias !== null, variant: v });
  launch(spec, [a.binding, b.binding, (bias ?? a).binding, y.binding], params, [
    Math.ceil(d.n / 4 / v.wgX),
    Math.ceil(d.m / 4 / v.wgY),
    d.batch,
  ]);
  return y;
}

/**
 * op(A) op(B) for 2-D [M,K] x [K,N], or batched [B,M,K] x [B,K,N] (either operand may be 2-D and is
 * then shared by every batch item). transA / transB read A as [K,M] and B as [N,K].
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const tA = opts.transA ?? false;
  const tB = opts.transB ?? false;
  const y = matmulKernel(a, b, tA, tB, null, 'matmul');
  return record('matmul', y, [a, b], (g) => {
    // With C = op(A) op(B): dop(A) = G op(B)^T and dop(B) = op(A)^T G, then transpose back.
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      ga = tA ? matmulKernel(b, g, tB, true, null, 'matmul backward') : matmulKernel(g, b, false, !tB, null, 'matmul backward');
      if (a.rank === 2 && ga.rank === 3) ga = sum(ga, 0);
    }
    if (b.requiresGrad) {
      gb = tB ? matmulKernel(g, a, true, tA, null, 'matmul backward') : matmulKernel(a, g, !tA, false, null, 'matmul backward');
      if (b.rank === 2 && gb.rank === 3) gb = sum(gb, 0);
    }
    return [ga, gb];
  });
}

/** Matmul with an explicit launch configuration and no gradient (benchmarks). */
export function matmulWithVariant(a: Tensor, b: Tensor, variant: MatmulVariant, opts: MatmulOptions = {}): Tensor {
  return matmulKernel(a, b, opts.transA ?? false, opts.transB ?? false, null, 'matmul', variant);
}

/** A dense layer: x [B, in], w [out, in], bias [out] -> x w^T + bias, [B, out]. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  const b = bias ?? null;
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[1] || (b && (b.rank !== 1 || b.shape[0] !== w.shape[0]))) {
    throw new ShapeError(
      'linear',
      `x ${shapeString(x.shape)} (want [B,in]), w ${shapeString(w.shape)} (want [out,in])` +
        (b ? `, bias ${shapeString(b.shape)} (want [out])` : ''),
    );
  }
  if (b && b.dtype !== 'f32') throw new ShapeError('linear', `bias must be f32, got ${b.dtype}`);
  const y = matmulKernel(x, w, false, true, b, 'linear');
  const inputs = b ? [x, w, b] : [x, w];
  return record('linear', y, inputs, (g) => [
    x.requiresGrad ? matmulKernel(g, w, false, false, null, 'linear backward') : null, // [B,out] x [out,in]
    w.requiresGrad ? matmulKernel(g, x, true, false, null, 'linear backward') : null, // [out,B] x [B,in]
    ...(b ? [b.requiresGrad ? sum(g, 0) : null] : []),
  ]);
}

export { pairedLinear } from './paired-linear';
export { pairedLinearMany, type PairedItem } from './paired-linear-many';
