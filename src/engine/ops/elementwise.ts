// Element-wise ops with NumPy broadcasting. Each op is its kernel code (an OP number of
// shaders/elementwise.wgsl) and its backward, side by side.
import sigmoidTanhWgsl from '../../../shaders/sigmoid_tanh.wgsl?raw';
import { record } from '../autograd';
import { Params, SHADERS, launch, stridesOf, threadsGrid, MAX_RANK } from '../kernels';
import { empty, Tensor, ShapeError, shapeString, type Shape } from '../tensor';
import { sumTo } from './reduce';
import type { KernelSpec } from '../../gpu/context';

const OP = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5,
  neg: 10, exp: 11, log: 12, sigmoid: 13, tanh: 14, relu: 15, elu: 16, softplus: 17, softsign: 18,
  sqrt: 19, square: 20, abs: 21, reciprocal: 22, affine: 23, clamp: 24, rsqrtEps: 25, powScalar: 26,
  reluGrad: 40, eluGrad: 41, sigmoidGrad: 42, tanhGrad: 43, softplusGrad: 44, softsignGrad: 45,
  absGrad: 46, clampGrad: 47, powGrad: 48, bceLogits: 50, bceLogitsGrad: 51,
} as const;

type OpName = keyof typeof OP;

function spec(op: OpName, broadcast: boolean): KernelSpec {
  return {
    name: 'elementwise.wgsl',
    code: SHADERS.elementwise,
    entry: 'main',
    constants: { OP: OP[op], BROADCAST: broadcast ? 1 : 0 },
    bindings: ['read', 'read', 'rw'],
  };
}

const FILL_SPEC: KernelSpec = { name: 'elementwise.wgsl', code: SHADERS.elementwise, entry: 'fill', bindings: ['rw'] };

export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(op, `shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides to read `shape` broadcast to `outShape` (0 on broadcast axes). */
function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const own = stridesOf(shape);
  const offset = outShape.length - shape.length;
  return outShape.map((_, i) => {
    const d = i - offset;
    return d < 0 || shape[d] === 1 ? 0 : own[d];
  });
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Launches OP on (a, b) -> new tensor of the broadcast shape. */
function run(op: OpName, a: Tensor, b: Tensor, s = 0, t = 0, target?: Shape): Tensor {
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new ShapeError(op, `expects f32 tensors, got ${a.dtype} and ${b.dtype}`);
  const outShape = target ? broadcastShapes(op, broadcastShapes(op, a.shape, b.shape), target) : broadcastShapes(op, a.shape, b.shape);
  if (outShape.length > MAX_RANK) throw new ShapeError(op, `rank ${outShape.length} > ${MAX_RANK}`);
  const y = empty(outShape);
  const direct = sameShape(a.shape, outShape) && sameShape(b.shape, outShape);
  const params = new Params()
    .u(y.size, outShape.length)
    .f(s, t)
    .array(outShape, 8)
    .array(broadcastStrides(a.shape, outShape), 8)
    .array(broadcastStrides(b.shape, outShape), 8)
    .build();
  launch(spec(op, !direct), [a.binding, b.binding, y.binding], params, threadsGrid(y.size));
  return y;
}

function unaryKernel(op: OpName, x: Tensor, s = 0, t = 0): Tensor {
  return run(op, x, x, s, t);
}

/** A tensor of `shape` filled with `value` (no gradient). */
export function fill(shape: Shape, value: number): Tensor {
  const y = empty(shape);
  launch(FILL_SPEC, [y.binding], new Params().u(y.size, 0).f(value, 0).build(), threadsGrid(y.size));
  return y;
}

export const zeros = (shape: Shape): Tensor => fill(shape, 0);
export const ones = (shape: Shape): Tensor => fill(shape, 1);

// ---- binary ------------------------------------------------------------------------------------

export function add(a: Tensor, b: Tensor): Tensor {
  return record('add', run('add', a, b), [a, b], (g) => [sumTo(g, a.shape), sumTo(g, b.shape)]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return record('sub', run('sub', a, b), [a, b], (g) => [sumTo(g, a.shape), sumTo(neg(g), b.shape)]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return record('mul', run('mul', a, b), [a, b], (g) => [
    a.requiresGrad ? sumTo(mul(g, b), a.shape) : null,
    b.requiresGrad ? sumTo(mul(g, a), b.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  const y = run('div', a, b);
  return record('div', y, [a, b], (g) => [
    a.requiresGrad ? sumTo(div(g, b), a.shape) : null,
    // d(a/b)/db = -a/b^2 = -y/b
    b.requiresGrad ? sumTo(neg(div(mul(g, y), b)), b.shape) : null,
  ]);
}

/** Element-wise max; the gradient goes to a where a > b, else to b. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const y = run('maximum', a, b);
  return record('maximum', y, [a, b], (g) => {
    const aWins = run('reluGrad', ones(y.shape), run('sub', a, b)); // 1 where a > b (ties go to b)
    return [
      a.requiresGrad ? sumTo(mul(g, aWins), a.shape) : null,
      b.requiresGrad ? sumTo(mul(g, unaryKernel('affine', aWins, -1, 1)), b.shape) : null,
    ];
  });
}

/** Broadcasts x to `shape` (NumPy rules); the gradient sums back. */
export function expand(x: Tensor, shape: Shape): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const y = run('affine', x, x, 1, 0, shape);
  if (!sameShape(y.shape, shape)) throw new ShapeError('expand', `cannot expand ${shapeString(x.shape)} to ${shapeString(shape)}`);
  return record('expand', y, [x], (g) => [sumTo(g, x.shape)]);
}

// ---- scalar forms --------------------------------------------------------------------------------

/** x * s + t with scalars s, t. */
export function affine(x: Tensor, s: number, t: number): Tensor {
  return record('affine', unaryKernel('affine', x, s, t), [x], (g) => [unaryKernel('affine', g, s, 0)]);
}

export const scale = (x: Tensor, s: number): Tensor => affine(x, s, 0);
export const addScalar = (x: Tensor, t: number): Tensor => affine(x, 1, t);

export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  return record('clamp', unaryKernel('clamp', x, lo, hi), [x], (g) => [run('clampGrad', g, x, lo, hi)]);
}

export function powScalar(x: Tensor, exponent: number): Tensor {
  return record('pow', unaryKernel('powScalar', x, exponent), [x], (g) => [run('powGrad', g, x, exponent)]);
}

// ---- unary ---------------------------------------------------------------------------------------

export function neg(x: Tensor): Tensor {
  return record('neg', unaryKernel('neg', x), [x], (g) => [neg(g)]);
}

export function exp(x: Tensor): Tensor {
  const y = unaryKernel('exp', x);
  return record('exp', y, [x], (g) => [mul(g, y)]);
}

export function log(x: Tensor): Tensor {
  return record('log', unaryKernel('log', x), [x], (g) => [div(g, x)]);
}

export function sigmoid(x: Tensor): Tensor {
  const y = unaryKernel('sigmoid', x);
  return record('sigmoid', y, [x], (g) => [run('sigmoidGrad', g, y)]);
}

export function tanh(x: Tensor): Tensor {
  const y = unaryKernel('tanh', x);
  return record('tanh', y, [x], (g) => [run('tanhGrad', g, y)]);
}

export function relu(x: Tensor): Tensor {
  return record('relu', unaryKernel('relu', x), [x], (g) => [run('reluGrad', g, x)]);
}

/** ELU with alpha = 1. */
export function elu(x: Tensor): Tensor {
  return record('elu', unaryKernel('elu', x), [x], (g) => [run('eluGrad', g, x)]);
}

export function softplus(x: Tensor): Tensor {
  return record('softplus', unaryKernel('softplus', x), [x], (g) => [run('softplusGrad', g, x)]);
}

export function softsign(x: Tensor): Tensor {
  return record('softsign', unaryKernel('softsign', x), [x], (g) => [run('softsignGrad', g, x)]);
}

export function sqrt(x: Tensor): Tensor {
  const y = unaryKernel('sqrt', x);
  return record('sqrt', y, [x], (g) => [div(scale(g, 0.5), y)]);
}

export function square(x: Tensor): Tensor {
  return record('square', unaryKernel('square', x), [x], (g) => [mul(g, scale(x, 2))]);
}

export function abs(x: Tensor): Tensor {
  return record('abs', unaryKernel('abs', x), [x], (g) => [run('absGrad', g, x)]);
}

/** 1 / sqrt(x + eps). */
export function rsqrt(x: Tensor, eps = 0): Tensor {
  const y = unaryKernel('rsqrtEps', x, eps);
  // d/dx (x+eps)^-1/2 = -1/2 (x+eps)^-3/2 = -1/2 y^3
  return record('rsqrt', y, [x], (g) => [mul(g, scale(mul(y, mul(y, y)), -0.5))]);
}

// ---- losses --------------------------------------------------------------------------------------

/**
 * Bernoulli cross-entropy from logits, element-wise: softplus(l) - x*l = -log p(x | sigmoid(l)),
 * stable for any logit. Targets x in [0, 1] take a gradient too (-l), though models treat them as data.
 */
export function bceWithLogits(logits: Tensor, targets: Tensor): Tensor {
  if (!sameShape(logits.shape, targets.shape)) {
    throw new ShapeError('bceWithLogits', `logits ${shapeString(logits.shape)} vs targets ${shapeString(targets.shape)}`);
  }
  const y = run('bceLogits', logits, targets);
  return record('bceWithLogits', y, [logits, targets], (g) => [
    logits.requiresGrad ? mul(g, run('bceLogitsGrad', logits, targets)) : null,
    targets.requiresGrad ? mul(g, neg(logits)) : null,
  ]);
}

const [ST_COMMON, ST_FORWARD, ST_BACKWARD] = (() => {
  const f = sigmoidTanhWgsl.indexOf('// ---- forward');
  const b = sigmoidTanhWgsl.indexOf('// ---- backward');
  if (f < 0 || b < 0) throw new Error('sigmoid_tanh.wgsl: a section is missing');
  return [sigmoidTanhWgsl.slice(0, f), sigmoidTanhWgsl.slice(f, b), sigmoidTanhWgsl.slice(b)];
})();
const ST_FORWARD_SPEC: KernelSpec = { name: 'sigmoid_tanh.wgsl', code: ST_COMMON + ST_FORWARD, entry: 'sigmoid_tanh_forward', bindings: ['read', 'read', 'rw'] };
const ST_BACKWARD_SPEC: KernelSpec = { name: 'sigmoid_tanh.wgsl', code: ST_COMMON + ST_BACKWARD, entry: 'sigmoid_tanh_backward', bindings: ['read', 'read', 'read', 'rw', 'rw'] };

/**
 * sigmoid(a) * tanh(b) for a and b of one shape (a gate whose halves are separate tensors), in one
 * dispatch forward and one backward: the values of mul(sigmoid(a), tanh(b)).
 */
export function sigmoidTanh(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'f32' || b.dtype !== 'f32' || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError('sigmoidTanh', `a ${shapeString(a.shape)} and b ${shapeString(b.shape)} must be f32 of one shape`);
  }
  const n = a.size;
  const words = new Params().u(n, 0, 0, 0).build();
  const y = empty(a.shape);
  launch(ST_FORWARD_SPEC, [a.binding, b.binding, y.binding], words, threadsGrid(n));
  return record('sigmoidTanh', y, [a, b], (dy) => {
    const da = empty(a.shape);
    const db = empty(b.shape);
    launch(ST_BACKWARD_SPEC, [a.binding, b.binding, dy.binding, da.binding, db.binding], words, threadsGrid(n));
    return [a.requiresGrad ? da : null, b.requiresGrad ? db : null];
  });
}
