// PNG files in Node (the command line): write RGBA grids, read any PNG (gray, gray+alpha, RGB, RGBA,
// palette, 1-16 bits per sample, interlaced or not) as 8-bit RGBA. pngjs does the codec work.
import { readFile, writeFile } from 'node:fs/promises';
import { PNG } from 'pngjs';
import type { RgbaImage } from '../data/preprocess';

export class PngError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PngError';
  }
}

/** Encodes an RGBA image as an 8-bit RGBA PNG. */
export function encodePng(image: RgbaImage): Uint8Array {
  const { width, height, data } = image;
  if (width < 1 || height < 1) throw new PngError(`encodePng: image is ${width}x${height}; PNG needs at least 1x1`);
  if (data.length !== width * height * 4) throw new PngError(`encodePng: ${data.length} bytes for a ${width}x${height} RGBA image (${width * height * 4})`);
  const png = new PNG({ width, height });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = PNG.sync.write(png, { colorType: 6, inputColorType: 6, bitDepth: 8 });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decodes any PNG into 8-bit RGBA (16-bit samples are rescaled, palettes expanded, gray replicated). */
export function decodePng(bytes: Uint8Array, name = 'PNG'): RgbaImage {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    throw new PngError(`${name}: cannot decode as PNG (${(error as Error).message})`);
  }
  const data = new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength);
  if (data.length !== png.width * png.height * 4) {
    throw new PngError(`${name}: decoder returned ${data.length} bytes for ${png.width}x${png.height} RGBA`);
  }
  return { width: png.width, height: png.height, data: new Uint8Array(data) };
}

export async function writePng(path: string, image: RgbaImage): Promise<void> {
  await writeFile(path, encodePng(image));
}

export async function readPng(path: string): Promise<RgbaImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new PngError(`cannot read ${path}: ${(error as Error).message}`);
  }
  return decodePng(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}
