// A grid of grayscale or colour (planar RGB) images drawn on a canvas from the worker's pixel arrays (ImageData, upscaled
// by CSS with crisp pixels).
import { useEffect, useRef } from 'react';
import type { ImageBatch } from '../worker/client';
import { pixelHash } from './format';

export function ImageGrid({ batch, columns, cell = 56, testId, label, extra }: { batch: ImageBatch; columns?: number; cell?: number; testId?: string; label: string; extra?: Record<string, string> }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const cols = Math.max(1, Math.min(columns ?? Math.ceil(Math.sqrt(batch.count)), batch.count));
  const rows = Math.ceil(batch.count / cols);
  const pad = 1;
  const s = batch.size;
  const width = cols * (s + pad) + pad;
  const height = rows * (s + pad) + pad;
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas) return;
    const g = canvas.getContext('2d');
    if (!g) return;
    const image = g.createImageData(width, height);
    const d = image.data;
    for (let k = 0; k < d.length; k += 4) {
      d[k] = 110;
      d[k + 1] = 110;
      d[k + 2] = 120;
      d[k + 3] = 255;
    }
    const channels = batch.channels ?? 1;
    const plane = s * s;
    const byte = (v: number): number => Math.round(Math.min(1, Math.max(0, v)) * 255);
    for (let i = 0; i < batch.count; i++) {
      const ox = pad + (i % cols) * (s + pad);
      const oy = pad + Math.floor(i / cols) * (s + pad);
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          const o = ((oy + y) * width + ox + x) * 4;
          if (channels === 3) {
            // Planar RGB: channel c of image i at (i*3 + c)*plane.
            const base = i * 3 * plane + y * s + x;
            const r = batch.pixels[base];
            const gr = batch.pixels[base + plane];
            const bl = batch.pixels[base + 2 * plane];
            const bad = Number.isNaN(r) || Number.isNaN(gr) || Number.isNaN(bl);
            d[o] = bad ? 255 : byte(r);
            d[o + 1] = bad ? 0 : byte(gr);
            d[o + 2] = bad ? 255 : byte(bl);
            continue;
          }
          const v = batch.pixels[i * plane + y * s + x];
          if (Number.isNaN(v)) {
            d[o] = 255;
            d[o + 1] = 0;
            d[o + 2] = 255;
          } else {
            const c = Math.round(Math.min(1, Math.max(0, v)) * 255);
            d[o] = c;
            d[o + 1] = c;
            d[o + 2] = c;
          }
        }
      }
    }
    g.putImageData(image, 0, 0);
  }, [batch, cols, width, height, s]);
  const scale = cell / s;
  return (
    <canvas
      ref={ref}
      className="grid-canvas"
      width={width}
      height={height}
      style={{ width: `${Math.round(width * scale)}px`, height: `${Math.round(height * scale)}px` }}
      data-testid={testId}
      data-hash={pixelHash(batch.pixels)}
      data-count={batch.count}
      data-channels={batch.channels ?? 1}
      data-columns={cols}
      {...extra}
      role="img"
      aria-label={label}
    />
  );
}
