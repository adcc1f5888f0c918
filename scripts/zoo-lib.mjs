// Pieces of the model zoo build (scripts/zoo.mjs) that tests import too: the float16 storage of a
// checkpoint and the reading of a checkpoint's header. Plain JavaScript (no build step), no deps.
//
// Zoo files are our checkpoints (safetensors + the run's config in metadata 'pixelvae_config') with
// the optimizer moments dropped and every F32 tensor stored as F16 (round to nearest, ties to even);
// src/io/safetensors.ts widens F16 back to F32 on load. `roundedF32` is the same checkpoint with F32
// tensors holding exactly the F16 values, for engines that do not read F16 (the PyTorch twin): the
// zoo's figures are measured on it, so they are the figures of the shipped weights.

import { cpus, totalmem } from 'node:os';

const CONFIG_KEY = 'pixelvae_config';
const OPTIM_PREFIX = 'optim/';
const ITEM = { F32: 4, U32: 4, I32: 4, U8: 1, F16: 2 };

/** Parses a safetensors file's header: { header, metadata, dataStart }. Throws on a malformed file. */
export function readHeader(bytes, name = 'safetensors file') {
  if (bytes.length < 8) throw new Error(`${name}: truncated (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n + 8 > bytes.length) throw new Error(`${name}: header length ${n} runs past the end of the file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const metadata = header.__metadata__ ?? {};
  delete header.__metadata__;
  return { header, metadata, dataStart: 8 + n };
}

/** The run config a checkpoint holds (parsed 'pixelvae_config'). */
export function checkpointConfig(bytes, name = 'checkpoint') {
  const { metadata } = readHeader(bytes, name);
  if (typeof metadata[CONFIG_KEY] !== 'string') throw new Error(`${name}: no '${CONFIG_KEY}' in its metadata (not a PixelVAE Lab checkpoint)`);
  return JSON.parse(metadata[CONFIG_KEY]);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, rounding to nearest with ties to even (overflow -> Inf, NaN kept). */
export function float32ToHalf(x) {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): the value is mant' * 2^-24 with the implicit bit restored.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && (half & 1)) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is the right result (up to Inf).
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? 1 : 0));
}

/** IEEE half bits -> number (exact). */
export function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

function encode(entries, metadata) {
  const header = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of entries) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, t] of entries) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

/**
 * A checkpoint as zoo files: { f16, roundedF32, config, tensors, values, dropped }. Optimizer
 * moments ('optim/...') are dropped; F32 tensors become F16; other dtypes are kept as they are.
 * Refuses non-finite values and values beyond float16's range (65504), naming the tensor.
 */
export function toZooFiles(bytes, name = 'checkpoint') {
  const { header, metadata, dataStart } = readHeader(bytes, name);
  if (typeof metadata[CONFIG_KEY] !== 'string') throw new Error(`${name}: no '${CONFIG_KEY}' in its metadata (not a PixelVAE Lab checkpoint)`);
  const ordered = Object.entries(header).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const half = [];
  const rounded = [];
  let values = 0;
  let dropped = 0;
  for (const [key, entry] of ordered) {
    const [begin, end] = entry.data_offsets;
    if (key.startsWith(OPTIM_PREFIX)) {
      dropped++;
      continue;
    }
    if (!(entry.dtype in ITEM)) throw new Error(`${name}: tensor '${key}' has dtype ${entry.dtype}, which the zoo does not convert`);
    const raw = bytes.slice(dataStart + begin, dataStart + end);
    if (entry.dtype !== 'F32') {
      half.push([key, { dtype: entry.dtype, shape: entry.shape, bytes: raw }]);
      rounded.push([key, { dtype: entry.dtype, shape: entry.shape, bytes: raw }]);
      continue;
    }
    const src = new Float32Array(raw.buffer);
    const h = new Uint16Array(src.length);
    const r = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      if (!Number.isFinite(src[i]) || Math.abs(src[i]) > 65504) {
        throw new Error(`${name}: tensor '${key}' value ${src[i]} at index ${i} does not fit float16 (finite, |x| <= 65504)`);
      }
      h[i] = float32ToHalf(src[i]);
      r[i] = halfToFloat(h[i]);
    }
    values += src.length;
    half.push([key, { dtype: 'F16', shape: entry.shape, bytes: new Uint8Array(h.buffer) }]);
    rounded.push([key, { dtype: 'F32', shape: entry.shape, bytes: new Uint8Array(r.buffer) }]);
  }
  return {
    f16: encode(half, metadata),
    roundedF32: encode(rounded, metadata),
    config: JSON.parse(metadata[CONFIG_KEY]),
    tensors: half.length,
    values,
    dropped,
  };
}

/**
 * Each test image's figure from the bytes zoo-eval.py --per-image writes (float64, little-endian);
 * bytes that are not a whole number of float64 values are refused.
 */
export function readPerImage(bytes, name = 'per-image file') {
  if (bytes.length % 8 !== 0) throw new Error(`${name}: ${bytes.length} bytes is not a whole number of float64 values`);
  const copy = new Uint8Array(bytes);
  return new Float64Array(copy.buffer, 0, copy.length / 8);
}

/**
 * The mean over images of (a - b) and its standard error, for two models scored on the same images:
 * the hard images are hard for both, so this is far tighter than the two means' own errors combined.
 */
export function pairedDifference(a, b) {
  if (a.length !== b.length) throw new Error(`paired difference: ${a.length} images against ${b.length}`);
  const n = a.length;
  if (n < 2) throw new Error('paired difference: needs at least two images');
  let mean = 0;
  for (let i = 0; i < n; i++) mean += a[i] - b[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (a[i] - b[i] - mean) ** 2;
  return { value: mean, stderr: Math.sqrt(ss / (n - 1) / n), n };
}

/** This machine as the zoo's records name it when the twin runs on the CPU. */
export function cpuHardware() {
  const c = cpus();
  return `${c[0]?.model?.trim() ?? 'CPU'}, ${c.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB (CPU, PyTorch)`;
}
