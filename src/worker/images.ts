// Decoding a user's upload into RGBA pixels, in the worker (createImageBitmap + OffscreenCanvas),
// with a message for every way a file can be unusable that says what is wrong and what to do. The
// header is read first (format from the magic bytes, width and height), so a decompression bomb is
// refused by its size before the browser decodes it, and a file that fails to decode is told what it
// looked like. Any format the browser decodes works (PNG, JPEG, GIF, WebP, BMP, AVIF; SVG is not
// supported by createImageBitmap on a Blob in workers).
import type { RgbaImage } from '../data/preprocess';
import type { UploadedFile } from './api';

/** Files above this are refused before decoding. */
export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
/** Decoded images above this many pixels are refused (a 40-megapixel photo is fine; a bomb is not). */
export const MAX_PIXELS = 100_000_000;
/** Larger images are scaled down by the browser while decoding (the model sees at most 64x64 anyway). */
const MAX_SIDE = 512;
/** Smallest side accepted: a smaller image has too few pixels to show a digit or an object. */
export const MIN_SIDE = 8;

export interface DecodeOptions {
  /**
   * Largest accepted ratio of the long side to the short one, for uploads fitted whole into a square
   * (the MNIST models pad): a 4000x3 strip would shrink to a line of gray and binarize to black.
   */
  maxAspect?: number;
}

function megabytes(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

function megapixels(n: number): string {
  return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} megapixels`;
}

export interface Sniffed {
  /** What the bytes look like ('PNG', 'JPEG', ... or a description such as 'text'). */
  format: string;
  /** Whether the browser can decode that format at all. */
  image: boolean;
  /** Width and height from the header, when the format has them there and they could be read. */
  width?: number;
  height?: number;
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, Math.min(end, bytes.length)));
}

/** JPEG: the first start-of-frame marker's height and width. */
function jpegSize(b: Uint8Array): { width: number; height: number } | null {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i += 1;
      continue;
    }
    const length = (b[i + 2] << 8) | b[i + 3];
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };
    }
    if (length < 2) return null;
    i += 2 + length;
  }
  return null;
}

/** The format of a file from its first bytes, with the header's dimensions where they are easy to read. */
export function sniffImage(bytes: Uint8Array): Sniffed {
  const b = bytes;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 4) === 'PNG') {
    return b.length >= 24 && ascii(b, 12, 16) === 'IHDR' ? { format: 'PNG', image: true, width: view.getUint32(16), height: view.getUint32(20) } : { format: 'PNG', image: true };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return { format: 'JPEG', image: true, ...(jpegSize(b) ?? {}) };
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) {
    return b.length >= 10 ? { format: 'GIF', image: true, width: view.getUint16(6, true), height: view.getUint16(8, true) } : { format: 'GIF', image: true };
  }
  if (b.length >= 2 && ascii(b, 0, 2) === 'BM') {
    return b.length >= 26 ? { format: 'BMP', image: true, width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) } : { format: 'BMP', image: true };
  }
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') {
    const chunk = ascii(b, 12, 16);
    if (chunk === 'VP8X' && b.length >= 30) return { format: 'WebP', image: true, width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
    if (chunk === 'VP8 ' && b.length >= 30) return { format: 'WebP', image: true, width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
    if (chunk === 'VP8L' && b.length >= 25) {
      const bits = view.getUint32(21, true);
      return { format: 'WebP', image: true, width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    return { format: 'WebP', image: true };
  }
  if (b.length >= 12 && ascii(b, 4, 8) === 'ftyp' && /avi[fs]/.test(ascii(b, 8, 12))) return { format: 'AVIF', image: true };
  if (b.length >= 4 && ascii(b, 0, 4) === '%PDF') return { format: 'a PDF document', image: false };
  if (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 3 && b[3] === 4) return { format: 'a zip archive', image: false };
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42))) {
    return { format: 'TIFF (which browsers do not decode)', image: false };
  }
  const head = new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(0, 256)).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return { format: 'SVG (a vector drawing, not decoded here)', image: false };
  if (head.startsWith('<!doctype html') || head.startsWith('<html')) return { format: 'an HTML page', image: false };
  const printable = b.subarray(0, 64).every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127));
  if (printable && b.length > 0) return { format: `text ("${ascii(b, 0, 24).replace(/\s+/g, ' ').trim()}${b.length > 24 ? '…' : ''}")`, image: false };
  return { format: 'not a known image format', image: false };
}

function claimed(file: UploadedFile): string {
  const ext = /\.([a-z0-9]+)$/i.exec(file.name)?.[1]?.toUpperCase();
  if (file.type.startsWith('image/')) return file.type.slice(6).toUpperCase().replace('JPG', 'JPEG').replace('SVG+XML', 'SVG');
  return ext === 'JPG' ? 'JPEG' : (ext ?? '');
}

function checkSize(width: number, height: number, options: DecodeOptions): void {
  if (width === 0 || height === 0) throw new Error(`the image is ${width}x${height} pixels: it has no pixels`);
  if (width * height > MAX_PIXELS) {
    throw new Error(`the image is ${width}x${height} pixels (${megapixels(width * height)}); at most ${megapixels(MAX_PIXELS)} are accepted: scale it down first`);
  }
  const aspect = Math.max(width, height) / Math.min(width, height);
  if (options.maxAspect && aspect > options.maxAspect) {
    throw new Error(
      `the image is ${width}x${height} pixels, its long side ${aspect.toFixed(aspect < 10 ? 1 : 0)} times its short side; fitted into a square it would be a thin line: crop it to at most ${options.maxAspect}:1 around the digit`,
    );
  }
  if (Math.min(width, height) < MIN_SIDE) {
    throw new Error(`the image is ${width}x${height} pixels; at least ${MIN_SIDE}x${MIN_SIDE} is needed to show anything: use a larger image`);
  }
}

export async function decodeUpload(file: UploadedFile, options: DecodeOptions = {}): Promise<RgbaImage & { originalWidth: number; originalHeight: number }> {
  const size = file.bytes.byteLength;
  if (size === 0) throw new Error('the file is empty (0 bytes)');
  if (size > MAX_UPLOAD_BYTES) throw new Error(`the file is ${megabytes(size)}; images up to ${megabytes(MAX_UPLOAD_BYTES)} are accepted`);
  const sniffed = sniffImage(new Uint8Array(file.bytes));
  const said = claimed(file);
  if (!sniffed.image) {
    throw new Error(`this file${said ? ` (named as ${said})` : ''} is ${sniffed.format}, not an image: export or save it as PNG or JPEG`);
  }
  // Refuse a huge image by its header, before the browser tries to decode it.
  if (sniffed.width !== undefined && sniffed.height !== undefined) checkSize(sniffed.width, sniffed.height, options);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([file.bytes], { type: file.type || 'application/octet-stream' }));
  } catch (error) {
    const dims = sniffed.width !== undefined ? ` of ${sniffed.width}x${sniffed.height} pixels` : '';
    const why = error instanceof Error && error.message ? ` (${error.message})` : '';
    throw new Error(
      `it starts as a ${sniffed.format} image${dims}${said && said !== sniffed.format ? ` (named as ${said})` : ''}, but its data could not be decoded${why}: the file is probably truncated or corrupt; open it in an image editor and save it again`,
    );
  }
  const originalWidth = bitmap.width;
  const originalHeight = bitmap.height;
  try {
    checkSize(originalWidth, originalHeight, options);
    const scale = Math.min(1, MAX_SIDE / Math.max(originalWidth, originalHeight));
    const width = Math.max(1, Math.round(originalWidth * scale));
    const height = Math.max(1, Math.round(originalHeight * scale));
    const canvas = new OffscreenCanvas(width, height);
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new Error('no 2-D canvas in this worker');
    // Transparent pixels stay transparent: preprocessImage composites alpha over white itself.
    g.drawImage(bitmap, 0, 0, width, height);
    const pixels = g.getImageData(0, 0, width, height);
    return { width, height, data: pixels.data, originalWidth, originalHeight };
  } finally {
    bitmap.close();
  }
}
