// Decoding a user's upload into RGBA pixels, in the worker (createImageBitmap + OffscreenCanvas),
// with a message for every way a file can be unusable. Any format the browser decodes works
// (PNG, JPEG, GIF, WebP, BMP, AVIF, SVG is not supported by createImageBitmap on a Blob in workers).
import type { RgbaImage } from '../data/preprocess';
import type { UploadedFile } from './api';

/** Files above this are refused before decoding. */
export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
/** Decoded images above this many pixels are refused (a 40-megapixel photo is fine; a bomb is not). */
const MAX_PIXELS = 100_000_000;
/** Larger images are scaled down by the browser while decoding (the model sees at most 28x28 anyway). */
const MAX_SIDE = 512;

function megabytes(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export async function decodeUpload(file: UploadedFile): Promise<RgbaImage & { originalWidth: number; originalHeight: number }> {
  const size = file.bytes.byteLength;
  if (size === 0) throw new Error('the file is empty (0 bytes)');
  if (size > MAX_UPLOAD_BYTES) throw new Error(`the file is ${megabytes(size)}; images up to ${megabytes(MAX_UPLOAD_BYTES)} are accepted`);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([file.bytes], { type: file.type || 'application/octet-stream' }));
  } catch {
    const kind = file.type ? ` (${file.type})` : '';
    throw new Error(`this file${kind} is not an image the browser can decode; use PNG, JPEG, GIF, WebP or BMP`);
  }
  const originalWidth = bitmap.width;
  const originalHeight = bitmap.height;
  try {
    if (originalWidth === 0 || originalHeight === 0) throw new Error('the image has no pixels');
    if (originalWidth * originalHeight > MAX_PIXELS) throw new Error(`the image is ${originalWidth}x${originalHeight} pixels; at most ${MAX_PIXELS / 1e6} megapixels are accepted`);
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
