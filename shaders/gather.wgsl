// Embedding gather and its deterministic scatter-add backward (src/engine/ops/gather.ts).
// Rows are the N indices; the table is [V, D].
//
// Backward without float atomics, in two passes:
//   scatter_partial: the indices are cut into chunks of `chunk` rows. One thread per (chunk, d)
//     zeroes its column of a [chunks, V, D] partial table, then walks its chunk's rows in order,
//     adding g[row, d] into partial[chunk, indices[row], d]. No two threads touch the same word.
//   scatter_reduce: one thread per (v, d) sums partial[0..chunks, v, d] in chunk order.
// Work is N*D + 2*chunks*V*D; with chunk ~ V that is ~3*N*D, where one thread per (v, d) looping
// over all N indices would be N*V*D. When there is one chunk, the partial table is the gradient.

struct Params {
  rows: u32,    // N = number of indices
  vocab: u32,   // V
  dim: u32,     // D
  chunk: u32,   // rows per chunk (backward)
  chunks: u32,
  _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- gather: out[row, d] = table[indices[row], d] (0 for an index out of range) ---------------
@group(0) @binding(1) var<storage, read> g_indices: array<u32>;
@group(0) @binding(2) var<storage, read> g_table: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_out: array<f32>;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.rows * p.dim) { return; }
  let row = i / p.dim;
  let d = i - row * p.dim;
  let v = g_indices[row];
  g_out[i] = select(0.0, g_table[v * p.dim + d], v < p.vocab);
}

// ---- scatter_partial ---------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> s_indices: array<u32>;
@group(0) @binding(2) var<storage, read> s_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> s_partial: array<f32>;

@compute @workgroup_size(64)
fn scatter_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;
  if (t >= p.chunks * p.dim) { return; }
  let c = t / p.dim;
  let d = t - c * p.dim;
  let base = c * p.vocab * p.dim + d;
  for (var v = 0u; v < p.vocab; v++) { s_partial[base + v * p.dim] = 0.0; }
  let end = min(p.rows, (c + 1u) * p.chunk);
  for (var row = c * p.chunk; row < end; row++) {
    let v = s_indices[row];
    if (v < p.vocab) {
      let at = base + v * p.dim;
      s_partial[at] = s_partial[at] + s_grad[row * p.dim + d];
    }
  }
}

// ---- scatter_reduce ----------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> r_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> r_out: array<f32>;

@compute @workgroup_size(256)
fn scatter_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let size = p.vocab * p.dim;
  if (i >= size) { return; }
  var acc = 0.0;
  for (var c = 0u; c < p.chunks; c++) { acc += r_partial[c * size + i]; }
  r_out[i] = acc;
}
