// Colour data in Node (the command line and tests): image decoding with pngjs (PNG) and jpeg-js
// (JPEG), and loading a folder of images, a zip of one, CIFAR-10 binary batches, or the bundled demo
// set, into train and held-out sets.
import { readdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { decodePng } from '../io/png-node';
import type { RgbaImage } from './preprocess';
import {
  buildColourSet,
  ColourDataError,
  sniffImage,
  splitColourSet,
  type BuildOptions,
  type ColourImageSet,
  type NamedBytes,
  type Skipped,
} from './colour';

/** Where scripts/build-colour-demo.mjs writes the demo set (CIFAR-10 records of 32x32 crops). */
export const DEMO_RELATIVE_PATH = 'public/colour-demo/colour-demo-32.bin';
/** Where scripts/build-colour-mnist.mjs writes colour-MNIST (the same record format). */
export const COLOUR_MNIST_RELATIVE_PATH = 'public/colour-mnist/colour-mnist-32.bin';

/** Decodes PNG and JPEG in Node; other formats are reported as unsupported here. */
export function decodeImageNode(bytes: Uint8Array, name: string): RgbaImage {
  const kind = sniffImage(bytes);
  if (kind === 'png') return decodePng(bytes, name);
  if (kind === 'jpeg') {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 });
    return { width: img.width, height: img.height, data: img.data };
  }
  throw new ColourDataError(`${name}: ${kind ?? 'unknown'} images are not supported on the command line (PNG and JPEG are)`);
}

async function listFiles(dir: string, depth = 0): Promise<string[]> {
  const out: string[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.') || e.name === '__MACOSX') continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (depth < 4) out.push(...(await listFiles(path, depth + 1)));
    } else if (e.isFile()) {
      out.push(path);
    }
  }
  return out;
}

async function readNamed(paths: readonly string[]): Promise<NamedBytes[]> {
  const files: NamedBytes[] = [];
  for (const p of paths) {
    const b = await readFile(p);
    files.push({ name: p, bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) });
  }
  return files;
}

/** A generated set's path, found from the working directory or from this module (null when not built). */
function generatedPath(relative: string): string | null {
  const candidates = [resolve(process.cwd(), relative)];
  try {
    const here = fileURLToPath(new URL('.', import.meta.url));
    candidates.push(resolve(here, '..', relative), resolve(here, '..', '..', relative));
  } catch {
    // not a file URL (bundled elsewhere): the working directory is enough
  }
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** The bundled demo set's path (null when not built). */
export function demoColourPath(): string | null {
  return generatedPath(DEMO_RELATIVE_PATH);
}

/** The colour-MNIST set's path (null when not built). */
export function colourMnistPath(): string | null {
  return generatedPath(COLOUR_MNIST_RELATIVE_PATH);
}

export interface ColourSplit {
  train: ColourImageSet;
  heldOut: ColourImageSet;
  skipped: Skipped[];
  /** One line for logs and checkpoints: where the data came from and how it was split. */
  description: string;
}

export interface LoadColourOptions extends Omit<BuildOptions, 'name'> {
  /** Held-out fraction when the source has no split of its own (default 0.1). */
  heldOut?: number;
  /** Seed of the split (default 2017). */
  splitSeed?: number;
}

/**
 * Loads colour data from paths: folders (searched recursively), zips, image files, CIFAR-10 .bin
 * batches, 'demo' for the bundled set, or 'colour-mnist' (scripts/build-colour-mnist.mjs). A CIFAR-10
 * folder's test_batch.bin becomes the held-out set (its official split); anything else is split by a
 * seeded shuffle.
 */
export async function loadColourData(paths: readonly string[], opts: LoadColourOptions): Promise<ColourSplit> {
  if (paths.length === 0) throw new ColourDataError('no data given (a folder, a zip, CIFAR-10 .bin files, "demo" or "colour-mnist")');
  const resolved: string[] = [];
  for (const p of paths) {
    if (p === 'demo') {
      const demo = demoColourPath();
      if (!demo) throw new ColourDataError(`the demo colour set is not built (expected ${DEMO_RELATIVE_PATH}); run: node scripts/build-colour-demo.mjs`);
      resolved.push(demo);
      continue;
    }
    if (p === 'colour-mnist') {
      const set = colourMnistPath();
      if (!set) throw new ColourDataError(`the colour-MNIST set is not built (expected ${COLOUR_MNIST_RELATIVE_PATH}); run: node scripts/build-colour-mnist.mjs`);
      resolved.push(set);
      continue;
    }
    let info;
    try {
      info = await stat(p);
    } catch (error) {
      throw new ColourDataError(`cannot read ${p}: ${(error as Error).message}`);
    }
    resolved.push(...(info.isDirectory() ? await listFiles(p) : [p]));
  }
  const testBatches = resolved.filter((p) => /^test_batch\.bin$/i.test(basename(p)));
  const trainPaths = testBatches.length > 0 && resolved.length > testBatches.length ? resolved.filter((p) => !testBatches.includes(p)) : resolved;
  const name = paths.join(', ');
  const built = await buildColourSet(await readNamed(trainPaths), decodeImageNode, { ...opts, name });
  const skipped = [...built.skipped];
  if (trainPaths !== resolved) {
    const held = await buildColourSet(await readNamed(testBatches), decodeImageNode, { ...opts, name: `${name} (test_batch)` });
    skipped.push(...held.skipped);
    return {
      train: built.set,
      heldOut: held.set,
      skipped,
      description: `${name}: ${built.set.count} train images, ${held.set.count} held-out (CIFAR-10 test_batch), ${opts.size}x${opts.size}`,
    };
  }
  const fraction = opts.heldOut ?? 0.1;
  const seed = opts.splitSeed ?? 2017;
  const { train, heldOut } = splitColourSet(built.set, fraction, seed);
  return {
    train,
    heldOut,
    skipped,
    description: `${name}: ${train.count} train / ${heldOut.count} held-out images (seeded split ${fraction}, seed ${seed}), ${opts.size}x${opts.size}${skipped.length ? `, ${skipped.length} files skipped` : ''}`,
  };
}
