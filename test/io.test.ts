import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../src/io/safetensors';
import {
  CONFIG_KEY,
  checkCompatible,
  configJson,
  decodeCheckpoint,
  encodeCheckpoint,
  parseConfigJson,
  restoreTensors,
  snapshotTensors,
  type CheckpointConfigInput,
} from '../src/io/checkpoint';
import { imageGrid } from '../src/io/grid';
import { decodePng, encodePng, readPng, writePng } from '../src/io/png-node';
import { describeMnistData } from '../src/data/mnist';
import { fromArray, keep, type Tensor } from '../src/engine';
import { useGpu } from './support/gpu';

const f32 = (shape: number[], f: (i: number) => number = (i) => i * 0.5 - 1): SafeTensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
};

/** A hand-made safetensors file: header object, data bytes. */
const handMade = (header: unknown, data: Uint8Array | number = 0, rawHeader?: string): Uint8Array => {
  const json = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
};

describe('safetensors', () => {
  it('round-trips F32, U32, I32, U8, scalars, empty tensors and metadata', () => {
    const tensors = new Map<string, SafeTensor>([
      ['w', f32([3, 5])],
      ['counts', { dtype: 'U32', shape: [4], data: new Uint32Array([0, 1, 0xffffffff, 7]) }],
      ['delta', { dtype: 'I32', shape: [2, 1], data: new Int32Array([-5, 2147483647]) }],
      ['bytes', { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255]) }],
      ['scalar', f32([], () => Math.PI)],
      ['nothing', f32([0, 4])],
    ]);
    const bytes = encodeSafetensors(tensors, { note: 'hello', [CONFIG_KEY]: '{"a":1}' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const back = decodeSafetensors(bytes);
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect(got.data).toEqual(t.data);
    }
    expect(back.metadata).toEqual({ note: 'hello', [CONFIG_KEY]: '{"a":1}' });
    // Decoded arrays do not alias the file.
    bytes.fill(0);
    expect(back.tensors.get('counts')!.data[2]).toBe(0xffffffff);
  });

  it('refuses each kind of corruption with a clear error', () => {
    const good = encodeSafetensors({ a: f32([2, 2]), b: f32([3]) });
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, 5), /truncated: 5 bytes/],
      [good.subarray(0, good.length - 4), /tensor 'b': data_offsets \[16, 28\] run past the end of the data \(24 bytes\)/],
      [handMade({}, 0).subarray(0, 9), /header length 2 runs past the end of the file \(1 bytes/],
      [handMade(null, 0, '{"a": [1, 2'), /header is not valid JSON/],
      [handMade(null, 0, '[1, 2]'), /header JSON is not an object/],
      [handMade({ a: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, 4), /tensor 'a': unknown dtype "Q7"/],
      [handMade({ a: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }, 4), /dtype BF16 is valid safetensors but not supported here/],
      [handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 12] } }, 12), /shape \[2\] of F32 needs 8 bytes but data_offsets \[0, 12\] hold 12/],
      [handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), /data_offsets \[0, 8\] run past the end/],
      [
        handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
        /tensor 'b': data_offsets \[4, 12\] overlap tensor 'a' \[0, 8\]/,
      ],
      [handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /starts at 4, leaving a gap of 4 unused bytes/],
      [handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8), /4 bytes after the last tensor are not described/],
      [handMade({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /shape \[-1\] is not a list of non-negative integers/],
      [handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /end before they begin/],
      [handMade({ a: { dtype: 'F32', shape: [1] } }, 4), /data_offsets undefined is not a pair/],
      [handMade({ __metadata__: { k: 3 } }, 0), /__metadata__ 'k' is a number; metadata values must be strings/],
    ];
    for (const [bytes, message] of cases) expect(() => decodeSafetensors(bytes, 'model.safetensors')).toThrow(message);
    expect(() => decodeSafetensors(good.subarray(0, 5), 'model.safetensors')).toThrow(/^model\.safetensors: /);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
    expect(() => decodeSafetensors(huge)).toThrow(/header length 4611686018427387904 runs past the end/);
    expect(() => encodeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/shape \[3\] \(3 elements\) but 2 values/);
    expect(() => encodeSafetensors({ a: { dtype: 'U32', shape: [2], data: new Float32Array(2) } })).toThrow(/declared U32 but its data is a Float32Array/);
  });
});

const config: CheckpointConfigInput = {
  preset: 'mnist-gated-pixelvae',
  sizes: { width: 16, latent: 16, layers: 12 },
  step: 1200,
  optimizer: { name: 'adam', step: 1200, lr: 1e-3, beta1: 0.9, beta2: 0.999 },
  data: { dataset: 'mnist', split: { train: 50000, valid: 10000, test: 10000 }, binarization: describeMnistData(2017), seed: 2017 },
  seed: 7,
};

describe('checkpoints', () => {
  const params = { 'enc.w': f32([4, 3]), 'enc.b': f32([4]), 'dec.w': f32([2, 2, 3, 3]) };
  const optim = { 'enc.w.m': f32([4, 3], () => 0.1), 'enc.w.v': f32([4, 3], () => 0.01) };
  const expected = Object.entries(params).map(([name, t]) => ({ name, shape: t.shape }));

  it('round-trips parameters, optimizer state and config', () => {
    const bytes = encodeCheckpoint({ config, params, optim });
    const ckpt = decodeCheckpoint(bytes);
    expect(ckpt.config).toMatchObject({ ...config, format: 'pixelvae-lab-checkpoint', version: 1 });
    expect([...ckpt.params.keys()]).toEqual(Object.keys(params));
    expect([...ckpt.optim.keys()]).toEqual(['enc.w.m', 'enc.w.v']);
    expect(ckpt.params.get('dec.w')!.data).toEqual(params['dec.w'].data);
    expect(decodeSafetensors(bytes).tensors.has('optim/enc.w.m')).toBe(true);
    expect(() => checkCompatible(ckpt, expected, 'mnist-gated-pixelvae')).not.toThrow();
    // The separate JSON is the same config.
    expect(parseConfigJson(configJson(config))).toEqual(ckpt.config);
  });

  it('lists every difference with the model in one error', () => {
    const ckpt = decodeCheckpoint(encodeCheckpoint({ config, params, optim }));
    const model = [
      { name: 'enc.w', shape: [4, 5] },
      { name: 'enc.b', shape: [4] },
      { name: 'prior.w', shape: [8] },
    ];
    let message = '';
    try {
      checkCompatible(ckpt, model, 'mnist-pixelcnn', [{ name: 'enc.w.m', shape: [4, 3] }]);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("nothing was loaded");
    expect(message).toContain("other preset: checkpoint is 'mnist-gated-pixelvae', model is 'mnist-pixelcnn'");
    expect(message).toContain("shape mismatch for tensor 'enc.w': checkpoint [4, 3], model [4, 5]");
    expect(message).toContain("missing tensor 'prior.w' [8]");
    expect(message).toContain("unexpected tensor 'dec.w' [2, 2, 3, 3]");
    expect(message).toContain("unexpected optimizer tensor 'enc.w.v'");
    expect(() => checkCompatible(ckpt, [...expected.slice(1), { name: 'enc.w', shape: [4, 3], dtype: 'U32' }], config.preset)).toThrow(
      /dtype mismatch for tensor 'enc.w': checkpoint F32, model U32/,
    );
  });

  it('refuses files that are not checkpoints or have a bad config', () => {
    expect(() => decodeCheckpoint(encodeSafetensors({ a: f32([1]) }), 'hf.safetensors')).toThrow(
      /hf\.safetensors: not a PixelVAE Lab checkpoint: its safetensors metadata has no 'pixelvae_config'/,
    );
    expect(() => decodeCheckpoint(new Uint8Array([1, 2, 3]), 'x.ckpt')).toThrow(/x\.ckpt: truncated.*not a valid checkpoint file/);
    const bad = (c: Record<string, unknown>) => encodeSafetensors({ a: f32([1]) }, { [CONFIG_KEY]: JSON.stringify(c) });
    const full = { ...config, format: 'pixelvae-lab-checkpoint', version: 1 };
    expect(() => decodeCheckpoint(bad({ ...full, version: 99 }))).toThrow(/version 99 was written by a newer PixelVAE Lab/);
    expect(() => decodeCheckpoint(bad({ ...full, step: -1 }))).toThrow(/step -1 is not a non-negative integer/);
    expect(() => decodeCheckpoint(bad({ ...full, preset: undefined }))).toThrow(/preset is missing/);
    expect(() => decodeCheckpoint(bad({ ...full, format: 'other' }))).toThrow(/format is "other"/);
    expect(() => decodeCheckpoint(encodeSafetensors({}, { [CONFIG_KEY]: '{oops' }))).toThrow(/'pixelvae_config': not valid JSON/);
    expect(() => encodeCheckpoint({ config, params: { 'optim/x': f32([1]) } })).toThrow(/reserved prefix 'optim\/'/);
  });

  describe('on the GPU', () => {
    let w: Tensor;
    let b: Tensor;
    let m: Tensor;
    beforeAll(async () => {
      await useGpu();
      w = keep(fromArray([1, 2, 3, 4, 5, 6], [2, 3]));
      b = keep(fromArray([9, 8], [2]));
      m = keep(fromArray([0, 0, 0, 0, 0, 0], [2, 3]));
    });
    afterAll(() => [w, b, m].forEach((t) => t?.dispose()));

    it('snapshots, refuses a mismatching checkpoint without writing, then restores', async () => {
      const snap = await snapshotTensors({ w, b });
      expect(Array.from(snap.get('w')!.data)).toEqual([1, 2, 3, 4, 5, 6]);
      const saved = encodeCheckpoint({
        config,
        params: { w: f32([2, 3], (i) => -i), b: f32([2], () => 0.5) },
        optim: { 'w.m': f32([2, 3], () => 0.25) },
      });
      const ckpt = decodeCheckpoint(saved);
      // A model with another shape for b: refused, and w is untouched.
      const otherB = keep(fromArray([1, 1, 1], [3]));
      expect(() => restoreTensors(ckpt, { w, b: otherB }, config.preset)).toThrow(/shape mismatch for tensor 'b': checkpoint \[2\], model \[3\]/);
      expect(() => restoreTensors(ckpt, { w, b }, 'other-preset')).toThrow(/other preset/);
      expect(Array.from(await w.data())).toEqual([1, 2, 3, 4, 5, 6]);
      otherB.dispose();
      restoreTensors(ckpt, { w, b }, config.preset, { 'w.m': m });
      expect(Array.from(await w.data())).toEqual([-0, -1, -2, -3, -4, -5]);
      expect(Array.from(await b.data())).toEqual([0.5, 0.5]);
      expect(Array.from(await m.data())).toEqual(new Array(6).fill(0.25));
    });
  });
});

describe('image grids and PNG files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pixelvae-io-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tiles images with padding', () => {
    const values = Float32Array.from({ length: 5 * 1 * 2 * 3 }, (_, i) => (i % 6) / 5);
    values[6] = Number.NaN;
    const grid = imageGrid(values, [5, 1, 2, 3], { columns: 3, padding: 1, background: [10, 20, 30] });
    expect([grid.width, grid.height]).toEqual([3 * 3 + 4, 2 * 2 + 3]);
    const px = (x: number, y: number): number[] => Array.from(grid.data.subarray(4 * (y * grid.width + x), 4 * (y * grid.width + x) + 4));
    expect(px(0, 0)).toEqual([10, 20, 30, 255]);
    expect(px(1, 1)).toEqual([0, 0, 0, 255]); // image 0, pixel (0, 0)
    expect(px(3, 2)).toEqual([255, 255, 255, 255]); // image 0, pixel (2, 1) = 5/5
    expect(px(5, 1)).toEqual([255, 0, 255, 255]); // image 1, pixel (0, 0) is NaN: magenta
    expect(px(9, 1)).toEqual([0, 0, 0, 255]); // image 2
    expect(px(1, 4)).toEqual([0, 0, 0, 255]); // image 3, second row
    expect(px(9, 4)).toEqual([10, 20, 30, 255]); // the missing sixth tile stays background
    const rgb = imageGrid([1, 0, 0.5], [1, 3, 1, 1], { padding: 0, scale: 2 });
    expect([rgb.width, rgb.height]).toEqual([2, 2]);
    expect(Array.from(rgb.data.subarray(12, 16))).toEqual([255, 0, 128, 255]);
    expect(() => imageGrid([0, 0], [1, 2, 1, 1])).toThrow(/2 channels/);
    expect(() => imageGrid([0], [2, 1, 1, 1])).toThrow(/1 values for shape \[2, 1, 1, 1\]/);
  });

  it('writes a PNG and reads it back exactly', async () => {
    const values = Float32Array.from({ length: 4 * 28 * 28 }, (_, i) => ((i * 7919) % 256) / 255);
    const grid = imageGrid(values, [4, 1, 28, 28]);
    const path = join(dir, 'grid.png');
    await writePng(path, grid);
    const back = await readPng(path);
    expect([back.width, back.height]).toEqual([grid.width, grid.height]);
    expect(back.data).toEqual(grid.data);
    await expect(readPng(join(dir, 'missing.png'))).rejects.toThrow(/cannot read .*missing\.png/);
    expect(() => decodePng(new Uint8Array([1, 2, 3, 4]), 'upload.png')).toThrow(/upload\.png: cannot decode as PNG/);
    expect(() => encodePng({ width: 0, height: 1, data: new Uint8Array(0) })).toThrow(/0x1/);
  });

  it('reads grayscale, 16-bit, gray+alpha and palette PNGs as RGBA', () => {
    // 2x1 images written by pngjs in other colour types (input is RGBA 8 or 16 bit).
    const write = (colorType: 0 | 2 | 4 | 6, bitDepth: 8 | 16): Uint8Array => {
      const png = new PNG({ width: 2, height: 1, colorType, bitDepth, inputHasAlpha: true });
      if (bitDepth === 16) {
        const words = new Uint16Array([65535, 65535, 65535, 65535, 0x8080, 0x8080, 0x8080, 65535]);
        png.data = Buffer.from(words.buffer);
      } else {
        png.data = Buffer.from([255, 255, 255, 255, 128, 128, 128, colorType === 4 ? 128 : 255]);
      }
      return PNG.sync.write(png, { colorType, bitDepth, inputColorType: 6 });
    };
    expect(Array.from(decodePng(write(0, 8)).data)).toEqual([255, 255, 255, 255, 128, 128, 128, 255]);
    expect(Array.from(decodePng(write(4, 8)).data)).toEqual([255, 255, 255, 255, 128, 128, 128, 128]);
    expect(Array.from(decodePng(write(0, 16)).data)).toEqual([255, 255, 255, 255, 128, 128, 128, 255]);
    expect(Array.from(decodePng(write(6, 16)).data)).toEqual([255, 255, 255, 255, 128, 128, 128, 255]);
    // A palette PNG (colour type 3, 8-bit indices), assembled by hand: pngjs cannot write one.
    const chunk = (type: string, body: Uint8Array): Buffer => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(body.length, 0);
      head.write(type, 4, 'latin1');
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'latin1'), body])) >>> 0, 0);
      return Buffer.concat([head, body, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(3, 0);
    ihdr.writeUInt32BE(1, 4);
    ihdr.set([8, 3, 0, 0, 0], 8);
    const palette = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255]);
    const rows = new Uint8Array([0, 2, 1, 0]); // filter byte 0, then indices
    const file = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('PLTE', palette),
      chunk('IDAT', deflateSync(rows)),
      chunk('IEND', new Uint8Array(0)),
    ]);
    const decoded = decodePng(new Uint8Array(file));
    expect([decoded.width, decoded.height]).toEqual([3, 1]);
    expect(Array.from(decoded.data)).toEqual([0, 0, 255, 255, 0, 255, 0, 255, 255, 0, 0, 255]);
  });
});
