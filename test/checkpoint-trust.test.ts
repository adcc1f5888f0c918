// Trust in checkpoints (issue 14): every loader refuses NaN or Inf in parameters, buffers and Adam's
// moments, naming the tensor with the count and the first index; a missing or extra tensor is named
// (also when its header entry was deleted and its bytes left behind); the app's own config JSON
// opened as a checkpoint is recognised. And the kernels that used to turn a NaN into a number
// (WGSL max/min/clamp return the other operand on CPU adapters) now pass it on: a NaN weight reaches
// the output of each of them, so a diverged model cannot look healthy.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import {
  assertFinite,
  checkCompatible,
  checkpointNonFinite,
  CheckpointError,
  configJson,
  decodeCheckpoint,
  encodeCheckpoint,
  NonFiniteCheckpointError,
  type CheckpointConfigInput,
} from '../src/io/checkpoint';
import { decodeSafetensors, type SafeTensor } from '../src/io/safetensors';
import { GpuImageSet } from '../src/data/gpu-dataset';
import { loadMnist } from '../src/data/mnist-node';
import { subset } from '../src/data/mnist';
import { resizeSet } from '../src/data/preprocess';
import { tinyConfig } from '../src/models/config';
import { MnistModel } from '../src/models/mnist-model';
import { loadInto, loadMnistCheckpoint, saveMnistCheckpoint } from '../src/models/mnist-checkpoint';
import { evaluate, MnistTrainer } from '../src/models/trainer';
import { hierConfig } from '../src/models/hierarchical/config';
import { HierarchicalPixelVae } from '../src/models/hierarchical/model';
import { loadHierCheckpoint, saveHierCheckpoint } from '../src/models/hierarchical/checkpoint';
import { useGpu } from './support/gpu';

const f32 = (values: number[], shape = [values.length]): SafeTensor => ({ dtype: 'F32', shape, data: Float32Array.from(values) });
const range = (n: number, scale = 0.1): number[] => Array.from({ length: n }, (_, i) => (i - n / 3) * scale);

const config: CheckpointConfigInput = {
  preset: 'mnist-pixelcnn',
  sizes: { pixelLayers: 2 },
  step: 7,
  optimizer: { name: 'adam', step: 7, lr: 1e-3 },
  data: { dataset: 'mnist', split: { train: 50000, valid: 10000, test: 10000 } },
  seed: 1,
};

/** A small checkpoint: two parameters and their Adam moments; `poison` changes values by file key first. */
function checkpointBytes(poison: Record<string, [number, number][]> = {}): Uint8Array {
  const tensors: Record<string, SafeTensor> = {
    'enc.w': f32(range(12), [4, 3]),
    'dec.b': f32(range(3)),
    'optim/m/enc.w': f32(range(12, 0.01), [4, 3]),
    'optim/v/enc.w': f32(range(12, 0.001).map(Math.abs), [4, 3]),
  };
  for (const [key, changes] of Object.entries(poison)) for (const [i, v] of changes) (tensors[key].data as Float32Array)[i] = v;
  const params = { 'enc.w': tensors['enc.w'], 'dec.b': tensors['dec.b'] };
  const optim = { 'm/enc.w': tensors['optim/m/enc.w'], 'v/enc.w': tensors['optim/v/enc.w'] };
  return encodeCheckpoint({ config, params, optim });
}

function refusal(bytes: Uint8Array, name = 'run.safetensors'): NonFiniteCheckpointError {
  try {
    decodeCheckpoint(bytes, name);
  } catch (error) {
    expect(error).toBeInstanceOf(NonFiniteCheckpointError);
    return error as NonFiniteCheckpointError;
  }
  throw new Error('the checkpoint was accepted');
}

describe('non-finite values are refused by name', () => {
  it('NaN in a parameter: the tensor, its shape, the count and the first index', () => {
    const e = refusal(checkpointBytes({ 'enc.w': [[7, Number.NaN], [5, Number.NaN]] }));
    expect(e.message).toBe(
      "run.safetensors: non-finite values (NaN or Inf) in 1 of 4 tensors; nothing was loaded:\n" +
        "  - 'enc.w' [4, 3]: 2 of 12 values, first at index 5 (NaN)\n" +
        'The run that wrote this file had diverged, or the file is damaged. Open an earlier checkpoint.',
    );
    expect(e.tensors).toEqual([{ key: 'enc.w', shape: [4, 3], count: 2, size: 12, first: 5, value: Number.NaN }]);
  });

  it('+Inf and -Inf in a parameter', () => {
    expect(refusal(checkpointBytes({ 'dec.b': [[2, Number.POSITIVE_INFINITY]] })).message).toContain("  - 'dec.b' [3]: 1 of 3 values, first at index 2 (+Inf)");
    expect(refusal(checkpointBytes({ 'dec.b': [[0, Number.NEGATIVE_INFINITY]] })).message).toContain("  - 'dec.b' [3]: 1 of 3 values, first at index 0 (-Inf)");
  });

  it('NaN or Inf in an optimizer moment is named by its key in the file', () => {
    expect(refusal(checkpointBytes({ 'optim/m/enc.w': [[11, Number.NaN]] })).message).toContain("  - 'optim/m/enc.w' [4, 3]: 1 of 12 values, first at index 11 (NaN)");
    expect(refusal(checkpointBytes({ 'optim/v/enc.w': [[3, Number.POSITIVE_INFINITY]] })).message).toContain("  - 'optim/v/enc.w' [4, 3]: 1 of 12 values, first at index 3 (+Inf)");
  });

  it('every bad tensor is listed, parameters and moments together', () => {
    const e = refusal(checkpointBytes({ 'dec.b': [[1, Number.NaN]], 'optim/v/enc.w': [[0, Number.NaN]] }));
    expect(e.message).toMatch(/in 2 of 4 tensors/);
    expect(e.tensors.map((t) => t.key)).toEqual(['dec.b', 'optim/v/enc.w']);
  });

  it('a finite checkpoint decodes; allowNonFinite leaves the check to the caller (the autosave)', () => {
    expect(() => decodeCheckpoint(checkpointBytes())).not.toThrow();
    const loose = decodeCheckpoint(checkpointBytes({ 'optim/m/enc.w': [[0, Number.NaN]] }), 'x', { allowNonFinite: true });
    expect(checkpointNonFinite(loose).map((t) => t.key)).toEqual(['optim/m/enc.w']);
    expect(() => assertFinite(loose, 'memory')).toThrow(/^memory: non-finite values .*\n {2}- 'optim\/m\/enc.w'/);
  });
});

// ---- missing and extra tensors ----------------------------------------------------------------------

/** Rewrites a safetensors header (the data is kept byte for byte): a tensor's entry deleted or changed. */
function editHeader(bytes: Uint8Array, edit: (header: Record<string, unknown>) => void): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  edit(header);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}

const model = [
  { name: 'enc.w', shape: [4, 3] },
  { name: 'dec.b', shape: [3] },
];
const moments = [
  { name: 'm/enc.w', shape: [4, 3] },
  { name: 'v/enc.w', shape: [4, 3] },
];

function compatibility(bytes: Uint8Array): string {
  try {
    checkCompatible(decodeCheckpoint(bytes, 'edited.safetensors'), model, 'mnist-pixelcnn', moments);
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    return (error as Error).message;
  }
  throw new Error('the checkpoint was accepted');
}

describe('a missing or extra tensor is named, not given as byte offsets', () => {
  it('an entry deleted from the header (its bytes left between two tensors): the missing tensor by name', () => {
    const edited = editHeader(checkpointBytes(), (h) => delete h['dec.b']);
    // The strict safetensors reader still calls this a gap (it knows no model), ...
    expect(() => decodeSafetensors(edited)).toThrow(/gap of 12 unused bytes/);
    // ... the checkpoint loaders, which know the model, say which tensor is missing.
    const message = compatibility(edited);
    expect(message).toContain("  - missing tensor 'dec.b' [3]");
    expect(message).toContain("  - 12 bytes of tensor data at [48, 60) belong to no tensor in the file's header");
    expect(message).not.toMatch(/gap|data_offsets/);
  });

  it('the last entry deleted (trailing bytes): named too, moments included', () => {
    const message = compatibility(editHeader(checkpointBytes(), (h) => delete h['optim/v/enc.w']));
    expect(message).toContain("  - missing optimizer tensor 'v/enc.w' [4, 3]");
    expect(message).toContain('48 bytes of tensor data at [108, 156)');
  });

  it('an extra tensor and a missing one', () => {
    const bytes = encodeCheckpoint({ config, params: { 'enc.w': f32(range(12), [4, 3]), 'extra.w': f32([1, 2]) } });
    const message = (() => {
      try {
        checkCompatible(decodeCheckpoint(bytes), model, 'mnist-pixelcnn');
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toContain("  - missing tensor 'dec.b' [3]");
    expect(message).toContain("  - unexpected tensor 'extra.w' [2] (the model has no such tensor)");
  });

  it('bytes no tensor claims are refused even when every name fits', () => {
    const bytes = checkpointBytes();
    const padded = new Uint8Array(bytes.length + 8);
    padded.set(bytes);
    expect(compatibility(padded)).toContain("  - 8 bytes of tensor data at [156, 164) belong to no tensor in the file's header");
  });
});

describe('JSON opened as a checkpoint', () => {
  const json = configJson(config);
  it("the app's own config JSON is recognised and the checkpoint file is asked for", () => {
    const expected =
      "pixelvae-mnist-pixelcnn-step7.json is the config JSON saved beside a checkpoint (preset 'mnist-pixelcnn', step 7), not a checkpoint: open the .safetensors file downloaded with it.";
    expect(() => decodeCheckpoint(new TextEncoder().encode(json), 'pixelvae-mnist-pixelcnn-step7.json')).toThrow(expected);
    // Minified, with a byte order mark and leading whitespace: the same.
    const minified = new TextEncoder().encode(`\ufeff \n${JSON.stringify(JSON.parse(json))}`);
    expect(() => decodeCheckpoint(minified, 'pixelvae-mnist-pixelcnn-step7.json')).toThrow(expected);
  });

  it('other JSON is called JSON, and non-JSON keeps the safetensors message', () => {
    expect(() => decodeCheckpoint(new TextEncoder().encode('{"weights": [1, 2]}'), 'w.json')).toThrow(
      'w.json is a JSON text file, not a checkpoint: open a .safetensors checkpoint file.',
    );
    expect(() => decodeCheckpoint(new TextEncoder().encode('{"weights": [1, 2'), 'broken.json')).toThrow(/broken\.json: header length \d+ runs past/);
  });
});

// ---- the model loaders (GPU) -------------------------------------------------------------------------

const SIZE = 8;
let test: GpuImageSet;

beforeAll(async () => {
  await useGpu();
  const split = await loadMnist();
  const testSet = resizeSet(subset(split.test, 'test', 0, 8), SIZE);
  test = GpuImageSet.upload({ ...testSet, images: testSet.images.map((v) => (v > 127 ? 1 : 0)) }, 'binary');
});

/** The bytes of a safetensors file with value `v` written at flat index `i` of tensor `key`. */
function poisonFile(bytes: Uint8Array, key: string, i: number, v: number): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>;
  const out = bytes.slice();
  new DataView(out.buffer).setFloat32(8 + n + header[key].data_offsets[0] + 4 * i, v, true);
  return out;
}

describe('the MNIST and hierarchical loaders', () => {
  const run = { step: 2, seed: 1, batchSize: 8, lr: 1e-3, clipValue: 1, binarizationSeed: 2017 };

  it('loadMnistCheckpoint refuses NaN in a weight and Inf in a moment; loadInto leaves the model as it was', async () => {
    const gpu = await useGpu();
    const source = new MnistModel(tinyConfig('gated-pixelvae', { seed: 4 }));
    const trainer = new MnistTrainer(source, test, { batchSize: 8, seed: 1 });
    trainer.trainStep();
    await gpu.sync();
    const bytes = await saveMnistCheckpoint(source, run, trainer);
    expect(() => loadMnistCheckpoint(poisonFile(bytes, 'enc.1.weight', 3, Number.NaN), 'nan.safetensors')).toThrow(
      /^nan\.safetensors: non-finite values \(NaN or Inf\) in 1 of \d+ tensors; nothing was loaded:\n {2}- 'enc\.1\.weight' \[[\d, ]+\]: 1 of \d+ values, first at index 3 \(NaN\)/,
    );
    expect(() => loadMnistCheckpoint(poisonFile(bytes, 'optim/v/pix.out1.bias', 0, Number.POSITIVE_INFINITY), 'inf.safetensors')).toThrow(
      /'optim\/v\/pix\.out1\.bias' \[\d+\]: 1 of \d+ values, first at index 0 \(\+Inf\)/,
    );
    // A checkpoint built in memory past decodeCheckpoint's check still cannot reach the GPU.
    const target = new MnistModel(tinyConfig('gated-pixelvae', { seed: 5 }));
    const before = await target.params.tensors()[0].data();
    const loose = decodeCheckpoint(poisonFile(bytes, 'dec.fc.bias', 1, Number.NaN), 'm', { allowNonFinite: true });
    expect(() => loadInto(target, loose)).toThrow(/'dec\.fc\.bias'.*first at index 1 \(NaN\)/);
    expect(Array.from(await target.params.tensors()[0].data())).toEqual(Array.from(before));
    for (const m of [source, target]) m.dispose();
    trainer.dispose();
    trainer.optimizer.dispose();
  });

  it('loadHierCheckpoint refuses Inf in a batch-norm running statistic, naming it', async () => {
    const source = new HierarchicalPixelVae(hierConfig('tiny', { seed: 3 }));
    const bytes = await saveHierCheckpoint(source, { step: 0, seed: 1, batchSize: 4, lr: 1e-3, data: 'test', trainImages: 4, heldOutImages: 4 });
    const key = 'buffer/dec1.l0.res0.bn.running_var';
    expect(() => loadHierCheckpoint(poisonFile(bytes, key, 2, Number.NEGATIVE_INFINITY), 'hier.safetensors')).toThrow(
      new RegExp(`^hier\\.safetensors: non-finite values[^\\n]*\\n {2}- '${key.replace(/\./g, '\\.')}' \\[\\d+\\]: 1 of \\d+ values, first at index 2 \\(-Inf\\)`),
    );
    source.dispose();
  });
});

// ---- NaN reaches the output of every kernel that used to eat it ------------------------------------

const hasNaN = (a: ArrayLike<number>): boolean => Array.prototype.some.call(a, (v: number) => Number.isNaN(v));

describe('a NaN is passed on, not turned into a number', () => {
  it('element-wise relu, maximum, minimum (either side), clamp and tanh (shaders/elementwise.wgsl)', async () => {
    const x = E.keep(E.fromArray([Number.NaN, -2, 3], [3]));
    const zero = E.keep(E.fromArray([0, 0, 0], [3]));
    const first = async (t: E.Tensor): Promise<number[]> => Array.from(await t.data());
    // Finite values keep their usual results; the NaN stays NaN.
    expect(await first(E.relu(x))).toEqual([Number.NaN, 0, 3]);
    expect(await first(E.maximum(x, zero))).toEqual([Number.NaN, 0, 3]);
    expect(await first(E.maximum(zero, x))).toEqual([Number.NaN, 0, 3]);
    expect(await first(E.neg(E.maximum(E.neg(x), E.neg(zero))))).toEqual([Number.NaN, -2, 0]); // min via max
    expect(await first(E.clamp(x, -1, 1))).toEqual([Number.NaN, -1, 1]);
    const t = await first(E.tanh(x));
    expect(t[0]).toBeNaN();
    expect(t[1]).toBeCloseTo(Math.tanh(-2), 6);
    x.dispose();
    zero.dispose();
  });

  it('the fused gate of a convolution and the stand-alone gate: a NaN in the tanh half (shaders/conv_forward.wgsl)', async () => {
    // Channels interleave (tanh, sigmoid); NaN only in the tanh half's weights.
    const w = new Float32Array(2 * 1 * 3 * 3).map((_, i) => ((i % 5) - 2) * 0.1);
    w[4] = Number.NaN; // output channel 0 (tanh), centre tap
    const x = E.randomNormal([1, 1, 5, 5], 3, 0);
    const y = await E.conv2d(x, E.fromArray(w, [2, 1, 3, 3]), { padding: 1, gate: true }).data();
    expect(Array.from(y).every(Number.isNaN)).toBe(true);
    const pre = new Float32Array(2 * 4).map((_, i) => i * 0.1);
    pre[2] = Number.NaN; // channel 0 (tanh), position 2
    const g = await E.gate(E.fromArray(pre, [1, 2, 2, 2])).data();
    expect(Number.isNaN(g[2])).toBe(true);
    expect(g.filter((v) => Number.isNaN(v)).length).toBe(1);
  });

  it('Adam: a NaN gradient is not clipped into a finite update, element-wise or by the global norm (shaders/adam.wgsl)', async () => {
    for (const opts of [{ clipValue: 1 }, { clipGlobalNorm: 5 }]) {
      const a = E.keep(E.fromArray([1, 2, 3], [3]));
      const b = E.keep(E.fromArray([4, 5], [2]));
      const adam = new E.Adam({ lr: 0.1, ...opts });
      adam.step([a, b], [E.fromArray([0.5, Number.NaN, -0.5], [3]), E.fromArray([0.1, 0.2], [2])]);
      const [av, bv] = [Array.from(await a.data()), Array.from(await b.data())];
      // As the float64 reference (Math.min/max pass NaN on): the NaN element, and with a global norm every element.
      expect(Number.isNaN(av[1]), JSON.stringify(opts)).toBe(true);
      if (opts.clipGlobalNorm) expect([...av, ...bv].every(Number.isNaN)).toBe(true);
      else expect(av[0]).toBeLessThan(1);
      adam.dispose();
      a.dispose();
      b.dispose();
    }
  });

  it("the issue's case: one NaN in the first encoder weight makes the MNIST bound NaN (ReLU no longer hides it)", async () => {
    const model = new MnistModel(tinyConfig('gated-pixelvae', { seed: 6 }));
    const clean = await evaluate(model, test, { k: 2, batchSize: 8, seed: 1 });
    expect(Number.isFinite(clean.nll)).toBe(true);
    const [name, t] = model.params.entriesList()[0];
    expect(name).toBe('enc.1.weight');
    const w = (await t.data()) as Float32Array;
    w[0] = Number.NaN;
    (await useGpu()).write(t.buffer, w);
    const poisoned = await evaluate(model, test, { k: 2, batchSize: 8, seed: 1 });
    expect(poisoned.nll).toBeNaN();
    expect(poisoned.negElbo).toBeNaN();
    expect(poisoned.kl).toBeNaN();
    model.dispose();
  });

  it('the MNIST incremental sampler (shaders/pixelcnn_incremental.wgsl): a NaN behind a ReLU head and in a tanh gate reaches the probabilities', async () => {
    for (const [preset, param, tanhHalf] of [
      ['pixelcnn', 'pix.out1.bias', false],
      ['gated-pixelcnn', 'pix.1.hstack.bias', true],
    ] as const) {
      const model = new MnistModel(tinyConfig(preset, { seed: 2 }));
      const t = model.params.get(param);
      const values = (await t.data()) as Float32Array;
      // In a gated layer only the tanh channels (even, interleaved with the sigmoid gates) get the NaN.
      for (let i = 0; i < values.length; i++) if (!tanhHalf || i % 2 === 0) values[i] = Number.NaN;
      (await useGpu()).write(t.buffer, values);
      for (const method of ['incremental', 'full'] as const) {
        const probs = await E.tidyAsync(async () => {
          const u = E.randomUniform([2, 1, SIZE, SIZE], 1, 2);
          const out = model.sample(null, u, undefined, { method });
          return out.probs.data();
        });
        expect(hasNaN(probs), `${preset} ${method}: NaN in ${param}`).toBe(true);
      }
      model.dispose();
    }
  });

  it("the hierarchical samplers' Gaussian step (masked_incremental.wgsl, sample_categorical.wgsl): a NaN sigma is not floored", async () => {
    const config = hierConfig('tiny', { seed: 3 });
    const model = new HierarchicalPixelVae(config);
    model.bn.training = false;
    // dec2.pix.out.bias holds z1's raw mu (first latent1 channels) then raw sigma: NaN in sigma only.
    const bias = model.params.get('dec2.pix.out.bias');
    const values = (await bias.data()) as Float32Array;
    expect(values.length).toBe(2 * config.latent1);
    for (let i = config.latent1; i < values.length; i++) values[i] = Number.NaN;
    (await useGpu()).write(bias.buffer, values);
    const noise = model.levelNoise(2, 1, 5, null);
    for (const method of ['incremental', 'full'] as const) {
      const out = await model.generate({ z2: noise.z2 }, noise, { method });
      expect(hasNaN(await out.z1.data()), `${method}: z1 from a NaN sigma`).toBe(true);
      out.images.dispose();
      out.z1.dispose();
      out.z2?.dispose();
    }
    for (const t of [noise.z2, noise.eps1, noise.uniforms]) t.dispose();
    model.dispose();
  });
});
