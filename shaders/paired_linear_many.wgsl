// Every gate's z conditioning of a packed model at once (src/engine/ops/paired-linear-many.ts): item i
// is shaders/paired_linear.wgsl's pair of maps, y_i[n, 2c] = a_i[c] . x_n + a_bias_i[c] and
// y_i[n, 2c + 1] = b_i[c] . x_n + b_bias_i[c], with the same arithmetic in the same order. All the
// maps' weights are slices of one buffer (the model's weight-normed W), all biases of another (the
// parameter arena), all outputs (and their gradients) of a third, so one dispatch serves every item
// each way, where paired_linear.wgsl takes one per item. A table gives each item's offsets. The three
// entry points bind differently: paired-linear-many.ts compiles the common part with one section each.

struct Params {
  batch: u32,   // N
  inner: u32,   // K: input features (z's dimension)
  items: u32,
  total: u32,   // threads: N x (sum of 2P_i) forward; N x K input gradient; sum of 2 P_i (K + 1) parameters
}

// Per item, 8 words (element offsets into the buffers named).
struct Item {
  units: u32,       // P_i
  a: u32,           // a_i [P, K] in the weights (forward, input gradient) or their gradients (parameters)
  b: u32,
  a_bias: u32,      // [P] in the biases or their gradients
  b_bias: u32,
  y: u32,           // y_i [N, 2P] in the outputs or their gradients
  start: u32,       // first column (forward) or parameter row (parameter gradients) of the item
  _pad: u32,
}

override HAS_BIAS: bool = true;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<Item>;

fn index_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// The last item whose start is <= s.
fn item_of(s: u32) -> u32 {
  var lo = 0u;
  var hi = p.items;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (table[mid].start <= s) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

// ---- forward: every y_i --------------------------------------------------------------------------------
@group(0) @binding(2) var<storage, read> x: array<f32>;          // [N, K]
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read> biases: array<f32>;     // (any buffer without biases)
@group(0) @binding(5) var<storage, read_write> outputs: array<f32>;

@compute @workgroup_size(64)
fn paired_many_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index_of(gid, nwg);
  if (i >= p.total) { return; }
  let columns = p.total / p.batch;
  let n = i / columns;
  let q = table[item_of(i % columns)];
  let col = i % columns - q.start;
  let c = col / 2u;
  var acc = 0.0;
  if ((col & 1u) == 0u) {
    for (var k = 0u; k < p.inner; k += 1u) { acc += x[n * p.inner + k] * weights[q.a + c * p.inner + k]; }
    if (HAS_BIAS) { acc += biases[q.a_bias + c]; }
  } else {
    for (var k = 0u; k < p.inner; k += 1u) { acc += x[n * p.inner + k] * weights[q.b + c * p.inner + k]; }
    if (HAS_BIAS) { acc += biases[q.b_bias + c]; }
  }
  outputs[q.y + n * 2u * q.units + col] = acc;
}
// ---- input gradient: dx [N, K] = sum over items and c of dy_i[n, 2c] a_i[c] + dy_i[n, 2c + 1] b_i[c] ------
// With HAS_PRIOR, plus the gradient x gathered from its other users.
override HAS_PRIOR: bool = false;
@group(0) @binding(2) var<storage, read> grad_outputs: array<f32>;
@group(0) @binding(3) var<storage, read> dx_weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_x: array<f32>;
@group(0) @binding(5) var<storage, read> prior_grad_x: array<f32>;   // [N, K] (any buffer without a prior)

@compute @workgroup_size(64)
fn paired_many_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index_of(gid, nwg);
  if (i >= p.total) { return; }
  let n = i / p.inner;
  let k = i % p.inner;
  var acc = 0.0;
  for (var j = 0u; j < p.items; j += 1u) {
    let q = table[j];
    let row = q.y + n * 2u * q.units;
    for (var c = 0u; c < q.units; c += 1u) {
      acc += grad_outputs[row + 2u * c] * dx_weights[q.a + c * p.inner + k] + grad_outputs[row + 2u * c + 1u] * dx_weights[q.b + c * p.inner + k];
    }
  }
  if (HAS_PRIOR) { acc += prior_grad_x[i]; }
  grad_x[i] = acc;
}

// ---- parameter gradients: da_i, db_i [P, K] and the biases' [P] (column K of each row) ----------------
// Thread (item, map s, unit c, column k), k = K meaning the bias: sums dy_i[n, 2c + s] x[n, k] (or dy
// alone) over n. An item's parameter rows start at its `start` (2 P_i rows of K + 1 threads each).
@group(0) @binding(2) var<storage, read> dw_grad_outputs: array<f32>;
@group(0) @binding(3) var<storage, read> dw_x: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_weights: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_biases: array<f32>;   // (a scratch word without biases)

@compute @workgroup_size(64)
fn paired_many_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index_of(gid, nwg);
  if (i >= p.total) { return; }
  let row_len = p.inner + 1u;
  let q = table[item_of(i / row_len)];
  let r = i / row_len - q.start;   // 0 .. 2P - 1: map s = r / P, unit c = r % P
  let s = r / q.units;
  let c = r % q.units;
  let k = i % row_len;
  let col = 2u * c + s;
  let cols = 2u * q.units;
  var acc = 0.0;
  if (k < p.inner) {
    for (var n = 0u; n < p.batch; n += 1u) { acc += dw_grad_outputs[q.y + n * cols + col] * dw_x[n * p.inner + k]; }
    if (s == 0u) { grad_weights[q.a + c * p.inner + k] = acc; } else { grad_weights[q.b + c * p.inner + k] = acc; }
  } else if (HAS_BIAS) {
    for (var n = 0u; n < p.batch; n += 1u) { acc += dw_grad_outputs[q.y + n * cols + col]; }
    if (s == 0u) { grad_biases[q.a_bias + c] = acc; } else { grad_biases[q.b_bias + c] = acc; }
  }
}
