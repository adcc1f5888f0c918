// Colour data for the hierarchical family in the worker: the bundled demo set (served by the app at
// colour-demo/colour-demo-32.bin, CIFAR-10 records of 32x32 crops), colour-MNIST (colour-mnist/, the
// same format, built by scripts/build-colour-mnist.mjs) or the user's own files (images,
// zips, CIFAR-10 .bin batches, picked or dropped in the page), built with src/data/colour.ts at the
// model's size, split like the command line does (CIFAR-10 test_batch.bin held out, else a seeded 10%),
// and uploaded to the GPU. Bad files are skipped and named; a set with no usable image is refused.
import { buildColourSet, ColourDataError, splitColourSet, type ColourImageSet, type ImageDecoder, type NamedBytes, type Skipped } from '../data/colour';
import { decodeUpload } from './images';

/**
 * The user's images decode like uploads (images.ts): size read from the header and a bomb refused
 * by it before decoding, large images scaled down while decoding, messages that say what to do.
 */
const decodeImageInBrowser: ImageDecoder = (bytes, name) =>
  decodeUpload({ name, type: '', bytes: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
import { GpuColourSet } from '../data/colour-gpu';
import type { ColourFilesInfo, ColourSource, DataInfo, UploadedFile } from './api';

export const DEMO_URL = 'colour-demo/colour-demo-32.bin';
/** Built by scripts/build-colour-mnist.mjs in the demo set's format. */
export const COLOUR_MNIST_URL = 'colour-mnist/colour-mnist-32.bin';

type BundledSource = Exclude<ColourSource, 'files'>;
/** The generated sets the app serves: where, the name in descriptions, and how to build one. */
const BUNDLED: Record<BundledSource, { url: string; name: string; label: string; build: string }> = {
  demo: { url: DEMO_URL, name: 'demo photos', label: 'demo colour set', build: 'npm run demo-data' },
  'colour-mnist': { url: COLOUR_MNIST_URL, name: 'colour-MNIST', label: 'colour-MNIST set', build: 'node scripts/build-colour-mnist.mjs' },
};
/** A bundled set's name as descriptions give it. */
export function bundledName(source: BundledSource): string {
  return BUNDLED[source].name;
}

const HELD_OUT = 0.1;
const SPLIT_SEED = 2017;
/** Total bytes of files the page accepts for one data set. */
const MAX_TOTAL_BYTES = 1024 * 1024 * 1024;

export interface ColourData {
  key: string;
  size: number;
  source: ColourSource;
  train: GpuColourSet;
  heldOut: GpuColourSet;
  /** The held-out images on the CPU (reconstruction inputs). */
  heldOutImages: ColourImageSet;
  info: DataInfo;
  skipped: Skipped[];
}

interface Built {
  train: ColourImageSet;
  heldOut: ColourImageSet;
  skipped: Skipped[];
  files: number;
  description: string;
}

/** Builds and splits a set from named files (the command line's rules: test_batch.bin is the held-out set when there is more). */
async function buildSplit(files: NamedBytes[], size: number, label: string): Promise<Built> {
  const isTest = (f: NamedBytes): boolean => /(^|[/:])test_batch\.bin$/i.test(f.name);
  const tests = files.filter(isTest);
  if (tests.length > 0 && tests.length < files.length) {
    const train = await buildColourSet(files.filter((f) => !isTest(f)), decodeImageInBrowser, { size, name: label });
    const held = await buildColourSet(tests, decodeImageInBrowser, { size, name: `${label} (test_batch)` });
    return {
      train: train.set,
      heldOut: held.set,
      skipped: [...train.skipped, ...held.skipped],
      files: train.files + held.files,
      description: `${label}: ${train.set.count} train images, ${held.set.count} held-out (CIFAR-10 test_batch), ${size}x${size}`,
    };
  }
  const built = await buildColourSet(files, decodeImageInBrowser, { size, name: label });
  const { train, heldOut } = splitColourSet(built.set, HELD_OUT, SPLIT_SEED);
  return {
    train,
    heldOut,
    skipped: built.skipped,
    files: built.files,
    description:
      `${label}: ${train.count} train / ${heldOut.count} held-out images (seeded split ${HELD_OUT}, seed ${SPLIT_SEED}), ${size}x${size}` +
      (built.skipped.length ? `, ${built.skipped.length} file${built.skipped.length > 1 ? 's' : ''} skipped` : ''),
  };
}

export class ColourDataStore {
  private readonly bundledBytes = new Map<BundledSource, Uint8Array>();
  private files: NamedBytes[] | null = null;
  private filesLabel = '';
  /** Built sets by `${source}:${size}` (the user's files are decoded once per size). */
  private readonly built = new Map<string, Built>();
  private current: ColourData | null = null;
  /** The last requested preparation: requests run one after another, so the last one asked for ends up current. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly sync: () => Promise<void>) {}

  /** A generated set the app serves (the demo photos, colour-MNIST), fetched once. */
  private async bundled(source: BundledSource, onStatus?: (m: string) => void): Promise<Uint8Array> {
    const cached = this.bundledBytes.get(source);
    if (cached) return cached;
    const set = BUNDLED[source];
    onStatus?.(`Downloading ${set.label}…`);
    const base = new URL(`${import.meta.env.BASE_URL}${set.url}`, (self as unknown as { location: Location }).location.origin);
    let response: Response;
    try {
      response = await fetch(base);
    } catch (error) {
      throw new ColourDataError(`The ${set.label} could not be fetched (${(error as Error).message}).`);
    }
    const type = response.headers.get('content-type') ?? '';
    if (!response.ok || type.includes('text/html')) {
      throw new ColourDataError(`The ${set.label} is not part of this build (run \`${set.build}\`, then rebuild), or choose your own images.`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    this.bundledBytes.set(source, bytes);
    return bytes;
  }

  private async build(source: ColourSource, size: number, onStatus?: (m: string) => void): Promise<Built> {
    const key = `${source}:${size}`;
    const cached = this.built.get(key);
    if (cached) return cached;
    let built: Built;
    if (source !== 'files') {
      const set = BUNDLED[source];
      const bytes = await this.bundled(source, onStatus);
      onStatus?.(`Preparing the ${set.label} at ${size}x${size}…`);
      built = await buildSplit([{ name: set.url.split('/').pop()!, bytes }], size, set.name);
    } else {
      if (!this.files) throw new ColourDataError('No images of your own are loaded: choose a folder, a zip or image files in the Model panel, or use the demo photos.');
      onStatus?.(`Decoding your images at ${size}x${size}…`);
      built = await buildSplit(this.files, size, this.filesLabel);
    }
    this.built.set(key, built);
    return built;
  }

  /** Replaces the user's files after checking them at `size`; keeps the previous ones when none is usable. */
  async setFiles(files: UploadedFile[], size: number, onStatus?: (m: string) => void): Promise<ColourFilesInfo> {
    if (files.length === 0) throw new ColourDataError('No files were given.');
    const total = files.reduce((n, f) => n + f.bytes.byteLength, 0);
    if (total > MAX_TOTAL_BYTES) throw new ColourDataError(`The files total ${(total / 2 ** 20).toFixed(0)} MB; at most ${MAX_TOTAL_BYTES / 2 ** 20} MB are accepted at once.`);
    const named = files.map((f) => ({ name: f.name, bytes: new Uint8Array(f.bytes) }));
    const label = files.length === 1 ? files[0].name : `${files.length} files`;
    onStatus?.(`Decoding ${label}…`);
    const built = await buildSplit(named, size, label);
    this.files = named;
    this.filesLabel = label;
    for (const key of [...this.built.keys()]) if (key.startsWith('files:')) this.built.delete(key);
    this.built.set(`files:${size}`, built);
    if (this.current?.source === 'files') this.current.key = 'stale';
    return { images: built.train.count + built.heldOut.count, files: built.files, skipped: built.skipped, description: built.description };
  }

  hasFiles(): boolean {
    return this.files !== null;
  }

  /**
   * The data at `size`, on the GPU (the previous set is released when another is made). Calls are
   * served in order (an opened model prepares its data when first needed, so requests can overlap).
   */
  ensure(source: ColourSource, size: number, onStatus?: (m: string) => void): Promise<ColourData> {
    const run = this.queue.then(() => this.ensureNow(source, size, onStatus));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async ensureNow(source: ColourSource, size: number, onStatus?: (m: string) => void): Promise<ColourData> {
    const key = `${source}:${size}`;
    if (this.current && this.current.key === key) return this.current;
    const t0 = performance.now();
    const built = await this.build(source, size, onStatus);
    if (built.train.count < 1) throw new ColourDataError(`${built.description}: no training images`);
    onStatus?.('Uploading the colour images to the GPU…');
    const train = GpuColourSet.upload(built.train);
    const heldOut = GpuColourSet.upload(built.heldOut);
    await this.sync();
    this.current?.train.dispose();
    this.current?.heldOut.dispose();
    const info: DataInfo = { description: built.description, imageSize: size, train: built.train.count, valid: built.heldOut.count, test: built.heldOut.count, loadMs: performance.now() - t0 };
    this.current = { key, size, source, train, heldOut, heldOutImages: built.heldOut, info, skipped: built.skipped };
    return this.current;
  }
}
