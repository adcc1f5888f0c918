// Multi-tensor Adam (src/engine/optim.ts): one dispatch updates a group of up to K parameter tensors,
// or sums the squares of up to K gradients, instead of one dispatch per tensor. The moments of every
// tensor live in two arenas (m, v: flat buffers, tensor j of the group at element p.arena[j]).
// Parameters and gradients stay in their own buffers (every other kernel binds whole buffers), so the
// K tensors of a group are K bindings each: src/engine/optim.ts generates those bindings and the
// `load_g` / `load_w` / `store_w` switches for each K, and appends them to this text. Thread i of the
// group's flat range belongs to the tensor j with start[j] <= i < start[j + 1].
//
// The arithmetic is that of shaders/adam.wgsl (same form, same NaN handling): element-wise clip, then
// the global-norm scale clip[0], then
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr_t * m / (sqrt(v) + eps).

struct Params {
  n: u32,           // elements in the group (sum of its tensors' sizes)
  slot: u32,        // sumsq: first partial slot of this group
  k: u32,           // tensors in the group
  _pad0: u32,
  clip_value: f32,  // element-wise clip bound c (<= 0: off)
  lr_t: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  _pad1: f32,
  _pad2: f32,
  _pad3: f32,
  start: array<vec4<u32>, 5>,   // start[j]: first flat index of tensor j (start[k] = n)
  arena: array<vec4<u32>, 4>,   // arena[j]: element offset of tensor j in the moment arenas
}

@group(0) @binding(0) var<uniform> p: Params;

fn start_of(j: u32) -> u32 { return p.start[j / 4u][j % 4u]; }
fn arena_of(j: u32) -> u32 { return p.arena[j / 4u][j % 4u]; }

// The tensor of flat index i (k is at most 16: a linear scan).
fn tensor_of(i: u32) -> u32 {
  var j = 0u;
  while (j + 1u < p.k && i >= start_of(j + 1u)) { j += 1u; }
  return j;
}

// As in shaders/adam.wgsl: NaN tested on the bits, since CPU adapters' clamp turns a NaN into a bound.
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// A NaN gradient stays NaN (clamp would make it +-c on CPU adapters and hide the divergence).
fn clip_elem(g: f32) -> f32 {
  if (p.clip_value > 0.0) { return select(clamp(g, -p.clip_value, p.clip_value), g, is_nan(g)); }
  return g;
}

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

// ---- sum of squares of a group of gradients, one partial per workgroup ------------------------------
// Bindings (generated): clip at 1, gradients at 2.. (read).
@compute @workgroup_size(64)
fn sumsq_multi(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = wid.x * WG + lid; i < p.n; i += nwg.x * WG) {
    let j = tensor_of(i);
    let g = clip_elem(load_g(j, i - start_of(j)));
    acc += g * g;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var width = WG / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { clip_rw[4u + p.slot + wid.x] = partial[0]; }
}

// ---- fused Adam update of a group of parameters, in place ---------------------------------------------
// Bindings (generated): m at 1, v at 2, clip at 3 (global-norm clipping only), then (w, g) pairs.
@compute @workgroup_size(256)
fn update_multi(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let j = tensor_of(i);
  let local = i - start_of(j);
  // clip_scale(): the global-norm scale clip[0], or 1 without global-norm clipping (generated).
  let g = clip_elem(load_g(j, local)) * clip_scale();
  let a = arena_of(j) + local;
  let mi = p.beta1 * m[a] + (1.0 - p.beta1) * g;
  let vi = p.beta2 * v[a] + (1.0 - p.beta2) * g * g;
  m[a] = mi;
  v[a] = vi;
  store_w(j, local, load_w(j, local) - p.lr_t * mi / (sqrt(vi) + p.eps));
}
