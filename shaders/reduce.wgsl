// Sum over any set of axes. One workgroup per output element: its 64 threads stride over the
// reduced elements, then a tree reduction in workgroup memory combines them. Axes are split into
// kept axes (which index the output) and reduced axes, each with its strides into the input.

struct Params {
  outputs: u32,      // number of output elements
  reduced: u32,      // elements summed per output
  kept_rank: u32,
  reduced_rank: u32,
  scale: f32,        // multiplies the sum (1/count for a mean)
  _pad0: u32, _pad1: u32, _pad2: u32,
  kept_shape: array<vec4<u32>, 2>,
  kept_strides: array<vec4<u32>, 2>,
  reduced_shape: array<vec4<u32>, 2>,
  reduced_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

fn unravel(i: u32, rank: u32, shape: array<vec4<u32>, 2>, strides: array<vec4<u32>, 2>) -> u32 {
  var rest = i;
  var offset = 0u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let size = shape[d / 4][d % 4];
    offset += (rest % size) * strides[d / 4][d % 4];
    rest = rest / size;
  }
  return offset;
}

@compute @workgroup_size(64)
fn sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let o = wid.x + wid.y * nwg.x;
  // Uniform control flow: every thread of a workgroup shares o, so this early exit is uniform.
  if (o >= p.outputs) { return; }
  let base = unravel(o, p.kept_rank, p.kept_shape, p.kept_strides);
  var acc = 0.0;
  for (var r = lid; r < p.reduced; r += WG) {
    acc += x[base + unravel(r, p.reduced_rank, p.reduced_shape, p.reduced_strides)];
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var width = WG / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { y[o] = partial[0] * p.scale; }
}
