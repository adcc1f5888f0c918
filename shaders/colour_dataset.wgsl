// Colour image sets on the GPU (src/data/colour-gpu.ts): each image's bytes (planar R, G, B planes,
// C*H*W bytes, a multiple of 4) are packed four per u32 word, little-endian. A batch is gathered by
// index into u32 sub-pixel values 0..255 [B, C, H, W] (the targets and embedding indices of the
// 256-way models). An index past the set's end yields 0xFFFFFFFF, which the embedding reads as zeros
// and the cross-entropy turns into NaN, so a bug shows instead of silently reading another image.

struct Params {
  n: u32,       // batch * words per image
  words: u32,   // u32 words per image
  count: u32,   // images in the set
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> packed: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

const WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(256)
fn gather_bytes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
  if (t >= p.n) { return; }
  let b = t / p.words;
  let w = t - b * p.words;
  let image = indices[b];
  var word = 0xFFFFFFFFu;
  var valid = image < p.count;
  if (valid) { word = packed[image * p.words + w]; }
  for (var k = 0u; k < 4u; k++) {
    out[t * 4u + k] = select(0xFFFFFFFFu, (word >> (8u * k)) & 0xFFu, valid);
  }
}
