// Colour image sets for the 256-way models, platform-free (the browser and Node share it): CIFAR-10
// binary batches, zips of images, single image files; each image centre-cropped to a square and
// area-resized to the model's size, stored as planar R, G, B bytes. Image decoding is injected
// (colour-node.ts decodes PNG and JPEG with pngjs and jpeg-js; decodeImageInBrowser uses
// createImageBitmap). A corrupt or unsupported file is skipped with a message naming it; a set
// with no usable image is refused.
import { unzipSync } from 'fflate';
import { resizeArea, type RgbaImage } from './preprocess';
import { SeededRng } from './mnist';

export const COLOUR_CHANNELS = 3;
/** CIFAR-10 binary record: 1 label byte, then 1024 R, 1024 G, 1024 B bytes (32x32, row-major). */
export const CIFAR_SIZE = 32;
export const CIFAR_RECORD = 1 + 3 * CIFAR_SIZE * CIFAR_SIZE;

export interface ColourImageSet {
  name: string;
  count: number;
  /** Square side. */
  size: number;
  /** count * 3 * size * size bytes: image i, channel c, row y, column x at ((i*3 + c)*size + y)*size + x. */
  images: Uint8Array;
  /** A label per image (CIFAR class, or the index of the file an image came from). */
  labels: Uint8Array;
}

export class ColourDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ColourDataError';
  }
}

/** A file given to the loader: its name (for messages) and bytes. */
export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

/** Decodes an image file to RGBA; throws on a corrupt file. */
export type ImageDecoder = (bytes: Uint8Array, name: string) => RgbaImage | Promise<RgbaImage>;

export interface Skipped {
  name: string;
  reason: string;
}

export type ImageKind = 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp';

/** The image format from the file's first bytes (null: not an image we know). */
export function sniffImage(bytes: Uint8Array): ImageKind | null {
  const at = (i: number, ...v: number[]): boolean => v.every((b, k) => bytes[i + k] === b);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'gif';
  if (at(0, 0x42, 0x4d)) return 'bmp';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  return null;
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** A CIFAR-10 binary batch by its name and size (data_batch_1.bin ... test_batch.bin, or any .bin of whole records). */
export function looksLikeCifar(name: string, bytes: Uint8Array): boolean {
  return /\.bin$/i.test(name) && bytes.length > 0 && bytes.length % CIFAR_RECORD === 0;
}

/** Parses a CIFAR-10 binary batch into 32x32 planar images and labels. */
export function parseCifar10(bytes: Uint8Array, name = 'CIFAR-10 batch'): ColourImageSet {
  if (bytes.length === 0 || bytes.length % CIFAR_RECORD !== 0) {
    throw new ColourDataError(`${name}: ${bytes.length} bytes is not a whole number of CIFAR-10 records (${CIFAR_RECORD} bytes each: a label byte and 3x32x32 pixels)`);
  }
  const count = bytes.length / CIFAR_RECORD;
  const plane = 3 * CIFAR_SIZE * CIFAR_SIZE;
  const images = new Uint8Array(count * plane);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = bytes[i * CIFAR_RECORD];
    if (label > 9) throw new ColourDataError(`${name}: record ${i} has label ${label}; CIFAR-10 labels are 0..9 (not a CIFAR-10 batch, or CIFAR-100's layout?)`);
    labels[i] = label;
    images.set(bytes.subarray(i * CIFAR_RECORD + 1, (i + 1) * CIFAR_RECORD), i * plane);
  }
  return { name, count, size: CIFAR_SIZE, images, labels };
}

/** Encodes planar images as CIFAR-10 records (how the bundled demo set is stored). */
export function encodeCifar10(set: ColourImageSet): Uint8Array {
  if (set.size !== CIFAR_SIZE) throw new ColourDataError(`encodeCifar10: images are ${set.size}x${set.size}, CIFAR records hold 32x32`);
  const plane = 3 * CIFAR_SIZE * CIFAR_SIZE;
  const out = new Uint8Array(set.count * CIFAR_RECORD);
  for (let i = 0; i < set.count; i++) {
    out[i * CIFAR_RECORD] = set.labels[i];
    out.set(set.images.subarray(i * plane, (i + 1) * plane), i * CIFAR_RECORD + 1);
  }
  return out;
}

/**
 * An RGBA image (alpha composited over white) as planar RGB bytes of size x size: centre-cropped to
 * a square ('crop', default) or padded with black ('pad'), then area-resized.
 */
export function toPlanar(image: RgbaImage, size: number, fit: 'crop' | 'pad' = 'crop'): Uint8Array {
  const { width, height, data } = image;
  if (!(width > 0 && height > 0) || data.length !== width * height * 4) {
    throw new ColourDataError(`image of ${width}x${height} with ${data.length} bytes is not valid RGBA`);
  }
  const side = fit === 'crop' ? Math.min(width, height) : Math.max(width, height);
  const window = { x0: (width - side) / 2, y0: (height - side) / 2, spanX: side, spanY: side };
  const out = new Uint8Array(3 * size * size);
  const plane = new Float32Array(width * height);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < width * height; i++) {
      const a = data[4 * i + 3] / 255;
      plane[i] = data[4 * i + c] * a + 255 * (1 - a);
    }
    const resized = resizeArea(plane, width, height, size, size, window);
    for (let i = 0; i < size * size; i++) out[c * size * size + i] = Math.min(255, Math.max(0, Math.round(resized[i])));
  }
  return out;
}

/** Area-resizes planar images (e.g. CIFAR's 32x32 to a tiny model's 8x8). */
export function resizePlanarSet(set: ColourImageSet, size: number): ColourImageSet {
  if (set.size === size) return set;
  const from = set.size;
  const images = new Uint8Array(set.count * 3 * size * size);
  const plane = new Float32Array(from * from);
  for (let i = 0; i < set.count; i++) {
    for (let c = 0; c < 3; c++) {
      const base = (i * 3 + c) * from * from;
      for (let k = 0; k < from * from; k++) plane[k] = set.images[base + k];
      const r = resizeArea(plane, from, from, size, size);
      for (let k = 0; k < size * size; k++) images[(i * 3 + c) * size * size + k] = Math.min(255, Math.max(0, Math.round(r[k])));
    }
  }
  return { ...set, size, images };
}

export interface BuildOptions {
  /** Model image side. */
  size: number;
  fit?: 'crop' | 'pad';
  /** Name of the resulting set (messages, checkpoints). */
  name?: string;
  /** Called for every skipped file (the default collects them only). */
  onSkip?: (skipped: Skipped) => void;
}

export interface BuildResult {
  set: ColourImageSet;
  skipped: Skipped[];
  /** Files that gave images (a CIFAR batch counts once). */
  files: number;
}

const IGNORED = /(^|\/)(__MACOSX\/|\.DS_Store$|Thumbs\.db$|\.[^/]*$)/;

/**
 * Builds one colour set from files: CIFAR-10 batches, zips (their entries, recursively) and image
 * files. Unsupported or corrupt files are skipped (reported through onSkip and in `skipped`); if
 * nothing usable remains it throws a ColourDataError listing what was skipped.
 */
export async function buildColourSet(files: readonly NamedBytes[], decode: ImageDecoder, opts: BuildOptions): Promise<BuildResult> {
  const size = opts.size;
  const chunks: Uint8Array[] = [];
  const labels: number[] = [];
  const skipped: Skipped[] = [];
  let used = 0;
  const skip = (name: string, reason: string): void => {
    const s = { name, reason };
    skipped.push(s);
    opts.onSkip?.(s);
  };
  const visit = async (file: NamedBytes, depth: number): Promise<void> => {
    const { name, bytes } = file;
    if (bytes.length === 0) return skip(name, 'empty file');
    if (isZip(bytes)) {
      if (depth > 2) return skip(name, 'zip nested too deeply');
      let entries: Record<string, Uint8Array>;
      try {
        entries = unzipSync(bytes);
      } catch (error) {
        return skip(name, `corrupt zip (${(error as Error).message})`);
      }
      for (const entry of Object.keys(entries).sort()) {
        if (entry.endsWith('/') || IGNORED.test(entry)) continue;
        await visit({ name: `${name}:${entry}`, bytes: entries[entry] }, depth + 1);
      }
      return;
    }
    if (looksLikeCifar(name, bytes)) {
      try {
        const set = resizePlanarSet(parseCifar10(bytes, name), size);
        chunks.push(set.images);
        for (const l of set.labels) labels.push(l);
        used += 1;
      } catch (error) {
        skip(name, (error as Error).message);
      }
      return;
    }
    const kind = sniffImage(bytes);
    if (!kind) return skip(name, /\.bin$/i.test(name) ? `not a CIFAR-10 batch (${bytes.length} bytes is not a multiple of ${CIFAR_RECORD})` : 'not a PNG, JPEG, GIF, BMP or WebP image');
    try {
      const image = await decode(bytes, name);
      chunks.push(toPlanar(image, size, opts.fit));
      labels.push(used % 256);
      used += 1;
    } catch (error) {
      skip(name, `cannot decode ${kind}: ${(error as Error).message}`);
    }
  };
  for (const f of files) await visit(f, 0);
  const count = chunks.reduce((n, c) => n + c.length, 0) / (3 * size * size);
  if (count === 0) {
    const list = skipped.slice(0, 10).map((s) => `  - ${s.name}: ${s.reason}`).join('\n');
    throw new ColourDataError(
      `no usable image in ${files.length === 1 ? files[0].name : `${files.length} files`}` +
        (skipped.length > 0 ? `; skipped ${skipped.length}:\n${list}${skipped.length > 10 ? '\n  ...' : ''}` : ''),
    );
  }
  const images = new Uint8Array(count * 3 * size * size);
  let at = 0;
  for (const c of chunks) {
    images.set(c, at);
    at += c.length;
  }
  return { set: { name: opts.name ?? (files.length === 1 ? files[0].name : 'images'), count, size, images, labels: Uint8Array.from(labels) }, skipped, files: used };
}

/** Images `indices` of a set, as a new set. */
export function pick(set: ColourImageSet, indices: readonly number[], name: string): ColourImageSet {
  const per = 3 * set.size * set.size;
  const images = new Uint8Array(indices.length * per);
  const labels = new Uint8Array(indices.length);
  indices.forEach((src, i) => {
    images.set(set.images.subarray(src * per, (src + 1) * per), i * per);
    labels[i] = set.labels[src];
  });
  return { name, count: indices.length, size: set.size, images, labels };
}

/**
 * A seeded split into train and held-out images: a fraction (default 10%, at least one image when
 * there are two or more) is held out, chosen by a seeded shuffle so the split is reproducible.
 */
export function splitColourSet(set: ColourImageSet, heldOutFraction = 0.1, seed = 2017): { train: ColourImageSet; heldOut: ColourImageSet } {
  if (!(heldOutFraction >= 0 && heldOutFraction < 1)) throw new ColourDataError(`held-out fraction ${heldOutFraction} must be in [0, 1)`);
  if (set.count < 2) throw new ColourDataError(`${set.name}: ${set.count} image(s) cannot be split into train and held-out sets (need at least 2)`);
  const order = Array.from({ length: set.count }, (_, i) => i);
  const rng = new SeededRng(seed, 7);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const held = Math.min(set.count - 1, Math.max(heldOutFraction > 0 ? 1 : 0, Math.round(set.count * heldOutFraction)));
  const heldIdx = order.slice(0, held).sort((a, b) => a - b);
  const trainIdx = order.slice(held).sort((a, b) => a - b);
  return { train: pick(set, trainIdx, `${set.name} (train)`), heldOut: pick(set, heldIdx, `${set.name} (held-out)`) };
}

/** Browser decoding (createImageBitmap + OffscreenCanvas), for the worker. */
export async function decodeImageInBrowser(bytes: Uint8Array, name: string): Promise<RgbaImage> {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') {
    throw new ColourDataError(`${name}: this environment cannot decode images (no createImageBitmap / OffscreenCanvas)`);
  }
  const bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new ColourDataError(`${name}: no 2d canvas context`);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  return { width: canvas.width, height: canvas.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
