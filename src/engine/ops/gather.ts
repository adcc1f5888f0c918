// Embedding lookup (shaders/gather.wgsl): a row gather forward, a deterministic scatter-add backward.
import gatherWgsl from '../../../shaders/gather.wgsl?raw';
import { record } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import type { KernelSpec } from '../../gpu/context';
import { empty, Tensor, ShapeError, shapeString } from '../tensor';

const spec = (entry: string, bindings: KernelSpec['bindings']): KernelSpec => ({ name: 'gather.wgsl', code: gatherWgsl, entry, bindings });
const GATHER = spec('gather', ['read', 'read', 'rw']);
const SCATTER_PARTIAL = spec('scatter_partial', ['read', 'read', 'rw']);
const SCATTER_REDUCE = spec('scatter_reduce', ['read', 'rw']);

/**
 * Rows per backward chunk: about V, so the partial tables ([chunks, V, D], ~N*D floats) cost about
 * as much as the gradient itself, and at least 64 so small tables still get long runs. Far faster
 * than one thread per (v, d) looping over all N indices, with bit-identical results (timings in
 * docs/performance.md, "Measurements behind kernel choices").
 */
function chunkRows(rows: number, vocab: number): number {
  return Math.max(1, Math.min(rows, Math.max(64, vocab)));
}

/** Gradient of the table: sums g[row] into row indices[row] (indices out of range are dropped). */
function scatterAdd(indices: Tensor, g: Tensor, vocab: number, dim: number): Tensor {
  const rows = indices.size;
  const chunk = chunkRows(rows, vocab);
  const chunks = Math.max(1, Math.ceil(rows / chunk));
  const params = new Params().u(rows, vocab, dim, chunk, chunks).build();
  const out = empty([vocab, dim]);
  if (chunks === 1) {
    // One chunk: its partial table is the gradient.
    launch(SCATTER_PARTIAL, [indices.binding, g.binding, out.binding], params, threadsGrid(dim, 64));
    return out;
  }
  const partial = empty([chunks, vocab, dim]);
  launch(SCATTER_PARTIAL, [indices.binding, g.binding, partial.binding], params, threadsGrid(chunks * dim, 64));
  launch(SCATTER_REDUCE, [partial.binding, out.binding], params, threadsGrid(vocab * dim));
  partial.dispose(); // the pool keeps it alive until the batch that reads it is submitted
  return out;
}

/**
 * out[..., :] = table[indices[...], :]: indices u32 of any shape, table f32 [V, D], output
 * [...indices.shape, D]. An index >= V reads zeros. The table's gradient is a deterministic
 * scatter-add (repeated indices accumulate in index order); indices get none.
 */
export function embedding(indices: Tensor, table: Tensor): Tensor {
  if (indices.dtype !== 'u32' || table.dtype !== 'f32' || table.rank !== 2) {
    throw new ShapeError(
      'embedding',
      `needs u32 indices and an f32 [V, D] table, got indices ${shapeString(indices.shape)} ${indices.dtype} and table ${shapeString(table.shape)} ${table.dtype}`,
    );
  }
  const [vocab, dim] = table.shape;
  const y = empty([...indices.shape, dim]);
  const params = new Params().u(indices.size, vocab, dim, 0, 0).build();
  launch(GATHER, [indices.binding, table.binding, y.binding], params, threadsGrid(y.size));
  return record('embedding', y, [indices, table], (g) => [null, scatterAdd(indices, g, vocab, dim)]);
}
