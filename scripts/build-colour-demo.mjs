#!/usr/bin/env node
// Builds the bundled colour demo set: 32x32 crops of five openly licensed photographs shipped in
// Debian's python3-skimage package (scikit-image's sample data; sources and licences in docs/data.md
// and in the SOURCES.json written next to the set). Output: public/colour-demo/colour-demo-32.bin,
// CIFAR-10 binary records (a label byte = the photo's index, then R, G, B planes of 32x32), which the
// app fetches and the CLI reads with `--data demo`. The folder is git-ignored (generated data).
//
// The photos come from the installed package when present, otherwise from `apt-get download
// python3-skimage` (the .deb only, no dependencies), unpacked with dpkg-deb into a temporary folder.
// Crops: for every window side 64, 96, 128 and 160 px, a grid with half-window stride, each window
// area-averaged down to 32x32.
//
// Usage: node scripts/build-colour-demo.mjs [--force] [--optional]
//   --optional: exit 0 with a warning when the photos cannot be had (no apt, no network).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = join(ROOT, 'public', 'colour-demo');
const OUT = join(OUT_DIR, 'colour-demo-32.bin');
const SKIMAGE_DATA = 'usr/lib/python3/dist-packages/skimage/data';
const SIZE = 32;
const WINDOWS = [64, 96, 128, 160];
const MAX_PER_PHOTO = 400;

/** The photographs, with what scikit-image's data module says of their origin and licence. */
const PHOTOS = [
  { file: 'astronaut.png', what: 'Eileen Collins, NASA astronaut (NASA Great Images database)', licence: 'public domain (no known copyright restrictions)' },
  { file: 'chelsea.png', what: 'Chelsea the cat, photographed by Stefan van der Walt', licence: 'CC0' },
  { file: 'coffee.png', what: 'a cup of coffee, photographed by Rachel Michetti (courtesy of Pikolo Espresso Bar)', licence: 'CC0' },
  { file: 'rocket.jpg', what: 'launch of DSCOVR on a Falcon 9 (SpaceX photos)', licence: 'public domain (released by SpaceX)' },
  { file: 'hubble_deep_field.jpg', what: 'Hubble eXtreme Deep Field (NASA)', licence: 'public domain (NASA media guidelines)' },
];

const args = new Set(process.argv.slice(2));
const say = (m) => process.stderr.write(`build-colour-demo: ${m}\n`);

function fail(message) {
  if (args.has('--optional')) {
    say(`warning: ${message}; the app and CLI will run without the demo colour set`);
    process.exit(0);
  }
  say(`error: ${message}`);
  process.exit(1);
}

function findPhotos() {
  const installed = join('/', SKIMAGE_DATA);
  if (PHOTOS.every((p) => existsSync(join(installed, p.file)))) return { dir: installed, cleanup: () => {}, from: 'installed python3-skimage' };
  const tmp = mkdtempSync(join(tmpdir(), 'colour-demo-'));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  try {
    execFileSync('apt-get', ['download', 'python3-skimage'], { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download produced no .deb');
    execFileSync('dpkg-deb', ['-x', join(tmp, deb), join(tmp, 'x')], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { dir: join(tmp, 'x', SKIMAGE_DATA), cleanup, from: deb };
  } catch (error) {
    cleanup();
    fail(`cannot get python3-skimage (${String(error.stderr ?? error.message).trim().split('\n')[0]}); try 'apt-get update' first`);
  }
}

function decode(path) {
  const bytes = readFileSync(path);
  if (path.endsWith('.png')) {
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, data: png.data };
  }
  return jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
}

/** Crops of one RGBA image as planar 32x32 RGB records with `label`. */
function crops(image, label) {
  const out = [];
  const { width, height, data } = image;
  for (const win of WINDOWS) {
    const k = win / SIZE;
    const stride = win / 2;
    for (let y0 = 0; y0 + win <= height; y0 += stride) {
      for (let x0 = 0; x0 + win <= width; x0 += stride) {
        const rec = new Uint8Array(1 + 3 * SIZE * SIZE);
        rec[0] = label;
        for (let y = 0; y < SIZE; y++) {
          for (let x = 0; x < SIZE; x++) {
            const acc = [0, 0, 0];
            for (let dy = 0; dy < k; dy++) {
              for (let dx = 0; dx < k; dx++) {
                const at = 4 * ((y0 + y * k + dy) * width + x0 + x * k + dx);
                for (let c = 0; c < 3; c++) acc[c] += data[at + c];
              }
            }
            for (let c = 0; c < 3; c++) rec[1 + c * SIZE * SIZE + y * SIZE + x] = Math.round(acc[c] / (k * k));
          }
        }
        out.push(rec);
      }
    }
  }
  return out;
}

if (existsSync(OUT) && !args.has('--force')) {
  say(`${OUT} exists (use --force to rebuild)`);
  process.exit(0);
}
const { dir, cleanup, from } = findPhotos();
try {
  const records = [];
  const counts = [];
  PHOTOS.forEach((photo, label) => {
    const path = join(dir, photo.file);
    if (!existsSync(path)) fail(`${photo.file} is missing from ${dir}`);
    const all = crops(decode(path), label);
    // At most MAX_PER_PHOTO crops per photo (evenly spaced), so no photo dominates the set.
    const every = Math.ceil(all.length / MAX_PER_PHOTO);
    const made = all.filter((_, i) => i % every === 0);
    counts.push(made.length);
    records.push(...made);
  });
  mkdirSync(OUT_DIR, { recursive: true });
  const bytes = new Uint8Array(records.length * records[0].length);
  records.forEach((r, i) => bytes.set(r, i * r.length));
  writeFileSync(OUT, bytes);
  writeFileSync(join(OUT_DIR, '.gitignore'), '*\n');
  const sources = {
    format: 'CIFAR-10 binary records: 1 label byte (the photo index below), then 32x32 R, G, B planes',
    package: 'Debian python3-skimage (scikit-image sample data; the package is BSD-3-Clause)',
    built_from: from,
    crops: `windows of ${WINDOWS.join(', ')} px on a half-window grid, area-averaged to ${SIZE}x${SIZE}, at most ${MAX_PER_PHOTO} per photo (evenly spaced)`,
    photos: PHOTOS.map((p, i) => ({ label: i, ...p, crops: counts[i] })),
  };
  writeFileSync(join(OUT_DIR, 'SOURCES.json'), `${JSON.stringify(sources, null, 2)}\n`);
  say(`wrote ${records.length} crops (${counts.join(' + ')}) to ${OUT}`);
} finally {
  cleanup();
}
