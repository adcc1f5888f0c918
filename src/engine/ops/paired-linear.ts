// Two linear maps of one input with interleaved outputs (shaders/paired_linear.wgsl): a gated
// PixelCNN's z conditioning (tanh and sigmoid terms side by side, as its gates read them) in one
// dispatch forward and two backward, where two linear layers and a concat took about eleven.
import pairedWgsl from '../../../shaders/paired_linear.wgsl?raw';
import { gradTarget, record } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import { empty, Tensor, ShapeError, shapeString } from '../tensor';
import type { KernelSpec } from '../../gpu/context';

const WG = 64;

function spec(entry: string, hasBias: boolean, bindings: KernelSpec['bindings'], hasPrior = false): KernelSpec {
  const constants: Record<string, number> = entry === 'paired_backward_input' ? { HAS_PRIOR: hasPrior ? 1 : 0 } : { HAS_BIAS: hasBias ? 1 : 0 };
  return { name: 'paired_linear.wgsl', code: pairedWgsl, entry, constants, bindings };
}

/**
 * x [N, K], a and b [P, K], optional biases [P] (both or neither) -> y [N, 2P] with
 * y[:, 2c] = x a_c + aBias[c] and y[:, 2c + 1] = x b_c + bBias[c].
 */
export function pairedLinear(x: Tensor, a: Tensor, b: Tensor, aBias?: Tensor | null, bBias?: Tensor | null): Tensor {
  const op = 'pairedLinear';
  const ba = aBias ?? null;
  const bb = bBias ?? null;
  const all = [x, a, b, ...(ba ? [ba] : []), ...(bb ? [bb] : [])];
  for (const t of all) if (t.dtype !== 'f32') throw new ShapeError(op, `expects f32 tensors, got ${t.dtype}`);
  const describe = `x ${shapeString(x.shape)} (want [N, K]), a ${shapeString(a.shape)} and b ${shapeString(b.shape)} (want [P, K])` +
    (ba || bb ? `, biases ${ba ? shapeString(ba.shape) : 'none'} and ${bb ? shapeString(bb.shape) : 'none'} (want [P] each)` : '');
  if (x.rank !== 2 || a.rank !== 2 || b.rank !== 2 || a.shape[1] !== x.shape[1] || b.shape[0] !== a.shape[0] || b.shape[1] !== a.shape[1]) {
    throw new ShapeError(op, describe);
  }
  if (!ba !== !bb || (ba && (ba.rank !== 1 || ba.shape[0] !== a.shape[0])) || (bb && (bb.rank !== 1 || bb.shape[0] !== a.shape[0]))) {
    throw new ShapeError(op, describe);
  }
  const [n, k] = x.shape;
  const units = a.shape[0];
  const hasBias = ba !== null;
  const words = new Params().u(n, k, units, 0).build();
  const y = empty([n, 2 * units]);
  // Without biases the bias bindings are read-only aliases of x (never read).
  launch(spec('paired_forward', hasBias, ['read', 'read', 'read', 'read', 'read', 'rw']), [x.binding, a.binding, b.binding, (ba ?? x).binding, (bb ?? x).binding, y.binding], words, threadsGrid(n * 2 * units, WG));
  const inputs = hasBias ? [x, a, b, ba!, bb!] : [x, a, b];
  // The tape hands x's gradient so far to the input-gradient kernel, which adds it (z feeds every gate).
  return record(op, y, inputs, (dy, prior) => {
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      dx = empty([n, k]);
      const before = prior?.[0] ?? null;
      launch(
        spec('paired_backward_input', hasBias, ['read', 'read', 'read', 'rw', 'read'], before !== null),
        [dy.binding, a.binding, b.binding, dx.binding, (before ?? dy).binding],
        words,
        threadsGrid(n * k, WG),
      );
    }
    const wantParams = a.requiresGrad || b.requiresGrad || (ba?.requiresGrad ?? false) || (bb?.requiresGrad ?? false);
    if (!wantParams) return hasBias ? [dx, null, null, null, null] : [dx, null, null];
    const da = a.requiresGrad ? gradTarget(a) : empty([units, k]);
    const db = b.requiresGrad ? gradTarget(b) : empty([units, k]);
    // The kernel writes every bias gradient it is given; without biases two scratch words take their place.
    const dba = hasBias && ba!.requiresGrad ? gradTarget(ba!) : empty([hasBias ? units : 1]);
    const dbb = hasBias && bb!.requiresGrad ? gradTarget(bb!) : empty([hasBias ? units : 1]);
    pairedBackwardParams(dy, x, da, db, dba, dbb, hasBias);
    if (!hasBias) {
      dba.dispose();
      dbb.dispose();
      return [dx, a.requiresGrad ? da : null, b.requiresGrad ? db : null];
    }
    return [dx, a.requiresGrad ? da : null, b.requiresGrad ? db : null, ba!.requiresGrad ? dba : null, bb!.requiresGrad ? dbb : null];
  }, { accumulates: [0] });
}

/**
 * The parameter gradients of one pair given dy [N, 2P] and x [N, K]: da, db [P, K] and, with
 * biases, dba, dbb [P] (otherwise scratch words). One dispatch.
 */
export function pairedBackwardParams(dy: Tensor, x: Tensor, da: Tensor, db: Tensor, dba: Tensor, dbb: Tensor, hasBias: boolean): void {
  const [n, k] = x.shape;
  const units = da.shape[0];
  launch(
    spec('paired_backward_params', hasBias, ['read', 'read', 'rw', 'rw', 'rw', 'rw']),
    [dy.binding, x.binding, da.binding, db.binding, dba.binding, dbb.binding],
    new Params().u(n, k, units, 0).build(),
    threadsGrid(2 * units * (k + 1), WG),
  );
}
