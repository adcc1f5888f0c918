// GPU-resident image sets (src/data/gpu-dataset.ts). Images are stored packed, four u8 pixels per
// u32 (pixel 4w+k in byte k, little-endian), each image padded to a whole number of words. A batch
// is gathered by index and unpacked to f32: value = byte * scale (1/255 for intensities, 1 for sets
// stored as 0/1 bits). An index past the set's end yields NaN pixels and label 0xFFFFFFFF, so a bug
// shows instead of silently reading another image.

struct Params {
  n: u32,              // batch * words_per_image (gather) or batch (labels)
  pixels: u32,         // pixels per image
  words: u32,          // u32 words per image = ceil(pixels / 4)
  count: u32,          // images in the set
  scale: f32,
  invalid: u32,        // bit pattern written for an index past the end (a quiet NaN for f32 outputs)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> packed: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;

// One thread per packed word: reads it once and writes its (up to) four pixels.
@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
  if (t >= p.n) { return; }
  let b = t / p.words;
  let w = t - b * p.words;
  let image = indices[b];
  let first = w * 4u;
  let base = b * p.pixels + first;
  if (image >= p.count) {
    let nan = bitcast<f32>(p.invalid);
    for (var k = 0u; k < 4u; k++) {
      if (first + k < p.pixels) { out[base + k] = nan; }
    }
    return;
  }
  let word = packed[image * p.words + w];
  for (var k = 0u; k < 4u; k++) {
    if (first + k < p.pixels) {
      out[base + k] = f32((word >> (8u * k)) & 0xffu) * p.scale;
    }
  }
}

@group(0) @binding(1) var<storage, read> labels_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> labels_out: array<u32>;

// One thread per batch entry: the label of each gathered image.
@compute @workgroup_size(256)
fn labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
  if (t >= p.n) { return; }
  let image = indices[t];
  if (image >= p.count) {
    labels_out[t] = p.invalid;
  } else {
    labels_out[t] = labels_in[image];
  }
}
