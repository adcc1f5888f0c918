// Colour data (src/data/colour*.ts): CIFAR-10 batches, PNG and JPEG files, zips, folders; cropping and
// resizing; the seeded split; skipped files named; empty sets refused; exact GPU gathers.
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { zipSync } from 'fflate';
import jpeg from 'jpeg-js';
import * as E from '../src/engine';
import {
  buildColourSet,
  CIFAR_RECORD,
  ColourDataError,
  encodeCifar10,
  parseCifar10,
  splitColourSet,
  toPlanar,
  type ColourImageSet,
} from '../src/data/colour';
import { decodeImageNode, loadColourData } from '../src/data/colour-node';
import { GpuColourSet } from '../src/data/colour-gpu';
import { encodePng } from '../src/io/png-node';
import type { RgbaImage } from '../src/data/preprocess';
import { useGpu } from './support/gpu';

/** A w x h RGBA image of one colour. */
function solid(w: number, h: number, rgb: [number, number, number]): RgbaImage {
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([...rgb, 255], 4 * i);
  return { width: w, height: h, data };
}

/** CIFAR records whose pixel bytes encode (record, offset) and labels record % 10. */
function cifarBytes(count: number): Uint8Array {
  const out = new Uint8Array(count * CIFAR_RECORD);
  for (let i = 0; i < count; i++) {
    out[i * CIFAR_RECORD] = i % 10;
    for (let k = 1; k < CIFAR_RECORD; k++) out[i * CIFAR_RECORD + k] = (i * 7 + k) % 256;
  }
  return out;
}

describe('colour data on the CPU', () => {
  it('parses CIFAR-10 batches and names the file in every error', () => {
    const set = parseCifar10(cifarBytes(3), 'data_batch_1.bin');
    expect(set.count).toBe(3);
    expect(set.size).toBe(32);
    expect(Array.from(set.labels)).toEqual([0, 1, 2]);
    expect(set.images[3072 + 5]).toBe((7 + 6) % 256); // record 1, byte 6 of the record (pixel byte 5)
    expect(Array.from(encodeCifar10(set))).toEqual(Array.from(cifarBytes(3)));
    expect(() => parseCifar10(new Uint8Array(CIFAR_RECORD + 1), 'broken.bin')).toThrow(/broken\.bin: 3074 bytes/);
    const bad = cifarBytes(2);
    bad[CIFAR_RECORD] = 42;
    expect(() => parseCifar10(bad, 'c100.bin')).toThrow(/c100\.bin: record 1 has label 42/);
  });

  it('centre-crops to a square and area-resizes, compositing alpha over white', () => {
    // 4x2: left half red, right half blue; the centre crop is the middle 2x2 (one red, one blue column).
    const img = solid(4, 2, [255, 0, 0]);
    for (const x of [2, 3]) for (const y of [0, 1]) img.data.set([0, 0, 255, 255], 4 * (y * 4 + x));
    const p = toPlanar(img, 2, 'crop');
    expect(Array.from(p)).toEqual([255, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 255]);
    expect(Array.from(toPlanar(img, 1, 'crop'))).toEqual([128, 0, 128]);
    const clear = solid(2, 2, [0, 0, 0]);
    clear.data.fill(0);
    expect(Array.from(toPlanar(clear, 1))).toEqual([255, 255, 255]);
  });

  it('builds a set from PNG, JPEG, zip and CIFAR files, skipping corrupt and unsupported ones by name', async () => {
    const png = encodePng(solid(6, 6, [10, 200, 30]));
    const jpg = new Uint8Array(jpeg.encode({ width: 8, height: 8, data: solid(8, 8, [250, 250, 250]).data }, 95).data);
    const zip = zipSync({ 'photos/a.png': png, 'photos/notes.txt': new TextEncoder().encode('hello'), '__MACOSX/._a.png': new Uint8Array([1, 2]) });
    const skipped: string[] = [];
    const result = await buildColourSet(
      [
        { name: 'one.png', bytes: png },
        { name: 'two.jpg', bytes: jpg },
        { name: 'broken.png', bytes: png.subarray(0, 40) },
        { name: 'readme.txt', bytes: new TextEncoder().encode('not an image') },
        { name: 'set.zip', bytes: zip },
        { name: 'data_batch_1.bin', bytes: cifarBytes(2) },
      ],
      decodeImageNode,
      { size: 4, onSkip: (s) => skipped.push(`${s.name}: ${s.reason}`) },
    );
    expect(result.set.count).toBe(1 + 1 + 1 + 2);
    expect(result.set.size).toBe(4);
    expect(result.set.images.length).toBe(5 * 3 * 16);
    expect(Array.from(result.set.images.subarray(0, 3 * 16)).filter((_, i) => i % 16 === 0)).toEqual([10, 200, 30]);
    const jpgPixel = result.set.images[3 * 16];
    expect(Math.abs(jpgPixel - 250)).toBeLessThanOrEqual(3);
    expect(skipped).toHaveLength(3);
    expect(skipped[0]).toMatch(/^broken\.png: cannot decode png/);
    expect(skipped[1]).toMatch(/^readme\.txt: not a PNG, JPEG/);
    expect(skipped[2]).toMatch(/^set\.zip:photos\/notes\.txt: not a PNG/);
  });

  it('refuses a set with no usable image, listing what was skipped', async () => {
    await expect(buildColourSet([{ name: 'x.png', bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]) }, { name: 'y.gif', bytes: new TextEncoder().encode('GIF89a') }], decodeImageNode, { size: 8 }))
      .rejects.toThrow(ColourDataError);
    await expect(buildColourSet([{ name: 'empty.bin', bytes: new Uint8Array(0) }], decodeImageNode, { size: 8 })).rejects.toThrow(/no usable image in empty\.bin; skipped 1:\n {2}- empty\.bin: empty file/);
  });

  it('splits reproducibly into disjoint train and held-out sets', () => {
    const count = 20;
    const set: ColourImageSet = { name: 's', count, size: 2, images: Uint8Array.from({ length: count * 12 }, (_, i) => Math.floor(i / 12)), labels: Uint8Array.from({ length: count }, (_, i) => i) };
    const a = splitColourSet(set, 0.25, 5);
    const b = splitColourSet(set, 0.25, 5);
    expect(a.heldOut.count).toBe(5);
    expect(a.train.count).toBe(15);
    expect(Array.from(a.heldOut.labels)).toEqual(Array.from(b.heldOut.labels));
    const all = [...a.train.labels, ...a.heldOut.labels].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(a.train.images[12]).toBe(a.train.labels[1]); // images follow their labels
    expect(() => splitColourSet({ ...set, count: 1, images: set.images.subarray(0, 12), labels: set.labels.subarray(0, 1) })).toThrow(/need at least 2/);
  });

  it('loads folders (recursively) and uses a CIFAR-10 folder\'s test_batch.bin as the held-out set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'colour-'));
    try {
      await mkdir(join(dir, 'photos', 'sub'), { recursive: true });
      for (let i = 0; i < 4; i++) await writeFile(join(dir, 'photos', i % 2 ? 'sub' : '', `p${i}.png`), encodePng(solid(5, 3, [i * 60, 0, 0])));
      await writeFile(join(dir, 'photos', 'bad.jpg'), new Uint8Array([0xff, 0xd8, 0xff, 0x00, 1, 2, 3]));
      const folder = await loadColourData([join(dir, 'photos')], { size: 8, heldOut: 0.25 });
      expect(folder.train.count + folder.heldOut.count).toBe(4);
      expect(folder.heldOut.count).toBe(1);
      expect(folder.skipped.map((s) => s.name)).toEqual([join(dir, 'photos', 'bad.jpg')]);
      await mkdir(join(dir, 'cifar'));
      await writeFile(join(dir, 'cifar', 'data_batch_1.bin'), cifarBytes(3));
      await writeFile(join(dir, 'cifar', 'test_batch.bin'), cifarBytes(2));
      const cifar = await loadColourData([join(dir, 'cifar')], { size: 32 });
      expect(cifar.train.count).toBe(3);
      expect(cifar.heldOut.count).toBe(2);
      expect(cifar.description).toMatch(/CIFAR-10 test_batch/);
      await expect(loadColourData([join(dir, 'nope')], { size: 8 })).rejects.toThrow(/cannot read .*nope/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('colour data on the GPU', () => {
  beforeAll(useGpu);

  it('gathers exact sub-pixel values by index, 0xFFFFFFFF past the end', async () => {
    const set = parseCifar10(cifarBytes(3), 'b.bin');
    const gpu = GpuColourSet.upload(set);
    try {
      const values = await E.tidyAsync(async () => gpu.batch(E.fromArray([2, 0, 7], [3], 'u32')).data());
      const per = 3 * 32 * 32;
      expect(Array.from(values.subarray(0, per))).toEqual(Array.from(set.images.subarray(2 * per, 3 * per)));
      expect(Array.from(values.subarray(per, 2 * per))).toEqual(Array.from(set.images.subarray(0, per)));
      expect(values.subarray(2 * per).every((v) => v === 0xffffffff)).toBe(true);
    } finally {
      gpu.dispose();
    }
  });
});
