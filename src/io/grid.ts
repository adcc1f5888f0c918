// Tiles a batch of images [N, C, H, W] (floats in [0, 1], C = 1 gray or 3 RGB) into one RGBA image
// with padding between and around the tiles. Platform-free: the command line writes it as PNG, the
// browser puts it in an ImageData.
import type { RgbaImage } from '../data/preprocess';

export interface GridOptions {
  /** Tiles per row (default: ceil(sqrt(N))). */
  columns?: number;
  /** Pixels between tiles and around the grid (default 2). */
  padding?: number;
  /** Colour of the padding, RGB 0..255 (default mid gray, so black and white tiles both show). */
  background?: readonly [number, number, number];
  /** Integer upscaling of each pixel (default 1). */
  scale?: number;
}

/** NaN pixels are drawn magenta so a broken sample is never mistaken for a dark one. */
const NAN_COLOUR = [255, 0, 255] as const;

export function imageGrid(values: ArrayLike<number>, shape: readonly number[], options: GridOptions = {}): RgbaImage {
  if (shape.length !== 4) throw new RangeError(`imageGrid: expected a shape [N, C, H, W], got [${shape.join(', ')}]`);
  const [n, c, h, w] = shape;
  if (c !== 1 && c !== 3) throw new RangeError(`imageGrid: ${c} channels; expected 1 (gray) or 3 (RGB)`);
  if (values.length !== n * c * h * w) {
    throw new RangeError(`imageGrid: ${values.length} values for shape [${shape.join(', ')}] (${n * c * h * w})`);
  }
  if (n === 0 || h === 0 || w === 0) throw new RangeError(`imageGrid: nothing to draw (shape [${shape.join(', ')}])`);
  const columns = options.columns ?? Math.ceil(Math.sqrt(n));
  const pad = options.padding ?? 2;
  const scale = options.scale ?? 1;
  const [br, bg, bb] = options.background ?? [128, 128, 128];
  if (!Number.isInteger(columns) || columns < 1) throw new RangeError(`imageGrid: columns ${columns} must be a positive integer`);
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`imageGrid: padding ${pad} must be a non-negative integer`);
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`imageGrid: scale ${scale} must be a positive integer`);
  const rows = Math.ceil(n / columns);
  const tw = w * scale;
  const th = h * scale;
  const width = columns * tw + (columns + 1) * pad;
  const height = rows * th + (rows + 1) * pad;
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data[4 * i] = br;
    data[4 * i + 1] = bg;
    data[4 * i + 2] = bb;
    data[4 * i + 3] = 255;
  }
  const plane = h * w;
  const byte = (v: number): number => Math.round(Math.min(1, Math.max(0, v)) * 255);
  for (let k = 0; k < n; k++) {
    const ox = pad + (k % columns) * (tw + pad);
    const oy = pad + Math.floor(k / columns) * (th + pad);
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const src = k * c * plane + Math.floor(y / scale) * w + Math.floor(x / scale);
        const at = 4 * ((oy + y) * width + ox + x);
        const r = values[src];
        const g = c === 3 ? values[src + plane] : r;
        const b = c === 3 ? values[src + 2 * plane] : r;
        if (Number.isNaN(r) || Number.isNaN(g) || Number.isNaN(b)) {
          data.set(NAN_COLOUR, at);
        } else {
          data[at] = byte(r);
          data[at + 1] = byte(g);
          data[at + 2] = byte(b);
        }
      }
    }
  }
  return { width, height, data };
}
