// The general strided copy behind every shape op (src/engine/ops/shape.ts): copy an N-d region
// (rank <= 8) from `src` at src_offset + sum(coord * src_strides) into `dst` at
// dst_offset + sum(coord * dst_strides). Elements are moved as raw 32-bit words, so the same kernel
// copies f32 and u32 tensors. One thread per element of the region; reads and writes may both be
// strided (transpose, depth-to-space) or either may be contiguous (slice, pad, concat).

struct Params {
  n: u32,            // elements in the region
  rank: u32,
  src_offset: u32,
  dst_offset: u32,
  shape: array<vec4<u32>, 2>,
  src_strides: array<vec4<u32>, 2>,
  dst_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var rest = i;
  var s = p.src_offset;
  var d = p.dst_offset;
  for (var k = i32(p.rank) - 1; k >= 0; k--) {
    let size = p.shape[k / 4][k % 4];
    let coord = rest % size;
    rest = rest / size;
    s += coord * p.src_strides[k / 4][k % 4];
    d += coord * p.dst_strides[k / 4][k % 4];
  }
  dst[d] = src[s];
}

// copy_rows: the same copy when the region's last axis is contiguous on both sides (src and dst
// strides 1), as in concat, slice and pad: a thread moves a run of up to ROW_RUN elements of one row,
// so the unravelling (an integer division per axis, slow on CPU adapters) is paid once per run
// instead of once per element. p.n counts the runs.
const ROW_RUN: u32 = 64u;

@compute @workgroup_size(64)
fn copy_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let last = i32(p.rank) - 1;
  let inner = p.shape[last / 4][last % 4];
  let runs = (inner + ROW_RUN - 1u) / ROW_RUN;
  let start = (i % runs) * ROW_RUN;
  var rest = i / runs;
  var s = p.src_offset + start;
  var d = p.dst_offset + start;
  for (var k = last - 1; k >= 0; k--) {
    let size = p.shape[k / 4][k % 4];
    let coord = rest % size;
    rest = rest / size;
    s += coord * p.src_strides[k / 4][k % 4];
    d += coord * p.dst_strides[k / 4][k % 4];
  }
  let count = min(ROW_RUN, inner - start);
  for (var j = 0u; j < count; j++) { dst[d + j] = src[s + j]; }
}

// zero: dst[dst_offset + i] = 0 for i < n (the zero background of pad; 0u is +0.0 as f32).
@group(0) @binding(1) var<storage, read_write> zero_out: array<u32>;

@compute @workgroup_size(256)
fn zero(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) { zero_out[p.dst_offset + i] = 0u; }
}
