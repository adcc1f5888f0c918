// The PyTorch twin of the hierarchical PixelVAE (python/pixelvae_torch/hier.py) against the WebGPU
// engine, on the tiny preset and an odd small configuration (KL warm-ups and a prior sigma floor on,
// so step 2 of a run weighs the terms and floors sigma). From the same TypeScript-written checkpoint
// and the same inputs and noise: the same logits, posteriors, per-image reconstruction, KL1, KL2 and
// IS-NLL with running batch-norm statistics; the same level noise, samples and reconstructions; in
// training mode the same loss, gradient of every parameter and overwritten running statistics; the
// same re-estimated statistics; and a fresh twin of the same seed starts from the same values.
// Also: colour data read into the same bytes and split, a 2-process data-parallel step equal to the
// 1-process one, and the same refusal of a bad configuration.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import * as E from '../src/engine';
import { hierConfig, latentGrids, schedule, type HierConfig } from '../src/models/hierarchical/config';
import { HierarchicalPixelVae } from '../src/models/hierarchical/model';
import { saveHierCheckpoint } from '../src/models/hierarchical/checkpoint';
import type { SafeTensor } from '../src/io/safetensors';
import { CIFAR_RECORD } from '../src/data/colour';
import { colourMnistPath, demoColourPath, loadColourData } from '../src/data/colour-node';
import { encodePng } from '../src/io/png-node';
import { rng } from './support/check';
import { useGpu } from './support/gpu';
import { compareArrays, f32, maxAbsDiff, readTensors, runPython, runPythonCode, tempDir, writeTensors, type TensorInput } from './support/twin';

beforeAll(useGpu);

// The tiny preset with its warm-ups and sigma floor switched on, and an odd configuration that reaches
// what tiny does not: z1 two levels down (two strided and two subpixel blocks in each trunk), an
// encoder level without blocks, two latent blocks per level, a second pixel block, 5x5 input masks,
// widths that are no multiple of the 3 colour groups, and z2 on a 1x1 grid.
const CASES: [string, HierConfig][] = [
  ['tiny', hierConfig('tiny', { seed: 5, alpha1Iters: 4, alpha2Iters: 6, betaIters: 10 })],
  ['odd', hierConfig('tiny', {
    seed: 9, embedDim: 3, dims: [5, 7, 4, 6], z1Level: 2, latent1: 3, latent2: 5, encoderBlocks: [1, 0], latentBlocks: 2,
    pixelWidth: 7, pixelBlocks: 2, latentPixelWidth: 5, inputFilter: 5, alpha1Iters: 4, alpha2Iters: 6, betaIters: 10,
  })],
];
const STEP = 2; // alpha1 0.75, alpha2 0.375, sigma floor 0.8
const B = 3;
const K = 4; // importance samples
const LEVEL_SEED = 7;

function ints(n: number, seed: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * 256));
}

function normals(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
}

/** Weights away from their initial symmetries (zero biases, unit gains and BN scales), output gains small so the KLs stay moderate. */
async function perturb(model: HierarchicalPixelVae, seed: number): Promise<void> {
  const r = rng(seed);
  const values = new Map<string, Float32Array>();
  for (const [name, t] of model.params.entriesList()) {
    const v = Float32Array.from(await t.data());
    const outputGain = /^(enc1\.out|enc2\.out|dec2\.pix\.out)\.gain$/.test(name);
    for (let i = 0; i < v.length; i++) {
      if (name.endsWith('.bias') || name.endsWith('.beta')) v[i] = 0.4 * (r() - 0.5);
      else if (name.endsWith('.gamma')) v[i] = 0.6 + 0.8 * r();
      else if (name.endsWith('.gain')) v[i] *= (outputGain ? 0.25 : 1) * (0.7 + 0.6 * r());
    }
    values.set(name, v);
  }
  model.params.assign(values);
  for (const [name, t] of model.buffers.entriesList()) {
    const v = Float32Array.from({ length: t.size }, () => (name.endsWith('running_var') ? 0.5 + 1.5 * r() : r() - 0.5));
    E.engine().gpu.write(t.buffer, v);
  }
}

// The twin's side: load the TypeScript checkpoint, run the same computations on the same inputs.
const PYTHON = String.raw`
import sys, json, time
import numpy as np, torch
from pixelvae_torch import safetensors as st, hier
from pixelvae_torch.api import expected_tensors
from pixelvae_torch.checkpoint import check_compatible, read_checkpoint
from pixelvae_torch.registry import model_from_checkpoint_config
torch.set_num_threads(1)
d = sys.argv[1]
t0 = time.time()
ckpt = read_checkpoint(d + '/checkpoint.safetensors')
model = model_from_checkpoint_config(ckpt.config)
check_compatible(ckpt, expected_tensors(model), model.preset)
with torch.no_grad():
    for name, t in model.checkpoint_tensors().items():
        t.copy_(torch.from_numpy(np.ascontiguousarray(ckpt.params[name])))
with open(d + '/inputs.safetensors', 'rb') as f:
    inp, meta = st.decode(f.read(), 'inputs.safetensors')
T = lambda n: torch.from_numpy(np.array(inp[n], dtype=np.int64 if inp[n].dtype == np.uint32 else np.float32))
x, x2 = T('x').long(), T('x2').long()
step, k = int(meta['step']), int(meta['k'])
out = {}
npf = lambda t: np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))
bufs = {n: t for n, t in model.checkpoint_tensors().items() if n.startswith('buffer/')}
initial = {n: t.clone() for n, t in bufs.items()}

# Evaluation: running statistics.
model.bn['training'] = False
with torch.no_grad():
    e = model.per_image(x, T('eps1'), T('eps2'))
    out['logits'] = npf(e['logits'])
    for key in ('reconstruction', 'kl1', 'kl2'):
        out[key] = npf(e[key])
    r = model.importance_nll(x, k, T('isEps1'), T('isEps2'))
    for key in ('nll', 'negElbo', 'kl', 'negElboSameSamples'):
        out['is/' + key] = npf(r[key])
    mu1, ls1, mu2, ls2 = model.posterior(x)
    out['mu1'], out['logSigma1'], out['mu2'], out['logSigma2'] = npf(mu1), npf(ls1), npf(mu2), npf(ls2)

# Top-down sampling with the level noise of a 1 x B grid varying the middle level, drawn here from
# the engine's streams (not read from the TypeScript), and a reconstruction keeping z1; running statistics.
level = model.level_noise(1, x.shape[0], int(meta['levelSeed']), 'middle')
for key, v in level.items():
    out['level/' + key] = npf(v)
g = model.generate(level['eps1'], level['uniforms'], z2=level['z2'])
out['sample/z1'] = npf(g['z1'])
out['sample/images'] = npf(g['images'].float())
r = model.reconstruct(x, 'middle', None, level['uniforms'])
out['reconstruct/images'] = npf(r['images'].float())

# One training step's loss and gradients: batch statistics, running ones overwritten.
model.bn.update(training=True, momentum=1.0)
terms = model.terms(x, T('eps1'), T('eps2'), hier.schedule(model.config, step))
for key in ('loss', 'reconstruction', 'kl1', 'kl2'):
    out['train/' + key] = npf(terms[key].reshape(1))
params = model.checkpoint_tensors()
names = model.trainable_names()
grads = torch.autograd.grad(terms['loss'], [params[n] for n in names], allow_unused=True)
for n, g in zip(names, grads):
    out['grad/' + n] = npf(torch.zeros_like(params[n]) if g is None else g)
for n, t in bufs.items():
    out['train/' + n] = npf(t)

# Re-estimation: the exact average over two batches (momentum 1/(s+1)).
model.reestimate_batch_norm([(x, T('eps1'), T('eps2')), (x2, T('eps1b'), T('eps2b'))])
for n, t in bufs.items():
    out['reest/' + n] = npf(t)

# A fresh twin of the same seed: its initial values against the TypeScript model's.
fresh = hier.build(dict(model.config)).checkpoint_tensors()
init_diff = max(float((fresh[n].detach() - T('init/' + n)).abs().max()) for n in names)
with open(d + '/twin.safetensors', 'wb') as f:
    f.write(st.encode(out))
print(json.dumps({'seconds': round(time.time() - t0, 2), 'initMaxAbsDiff': init_diff}))
`;

describe('PyTorch twin of the hierarchical PixelVAE', () => {
  const dir = tempDir('pixelvae-twin-hier-');
  afterAll(() => dir.remove());

  it.each(CASES)('%s: gives the WebGPU engine\'s logits, per-image terms, IS-NLL, samples, gradients and batch-norm statistics', async (label, config) => {
    const S = config.imageSize;
    const C = config.channels;
    const G1 = latentGrids(config).z1;
    const L1 = config.latent1;
    const L2 = config.latent2;
    const DIMS = C * S * S;
    const caseDir = join(dir.path, label);
    mkdirSync(caseDir);
    const file = (name: string): string => join(caseDir, name);
    const model = new HierarchicalPixelVae(config);
    const ts = new Map<string, Float32Array>();
    const inputs = new Map<string, TensorInput>();
    try {
      const init = new Map<string, Float32Array>();
      for (const [name, t] of model.params.entriesList()) init.set(name, Float32Array.from(await t.data()));
      await perturb(model, 11);
      const bytes = await saveHierCheckpoint(model, { step: STEP, seed: 1, batchSize: B, lr: 1e-3, data: 'test', trainImages: 0, heldOutImages: 0 });
      writeFileSync(file('checkpoint.safetensors'), bytes);

      const xs = ints(B * DIMS, 21);
      const x2s = ints(B * DIMS, 22);
      const noise = {
        eps1: normals(B * L1 * G1 * G1, 31), eps2: normals(B * L2, 32),
        eps1b: normals(B * L1 * G1 * G1, 33), eps2b: normals(B * L2, 34),
        isEps1: normals(K * B * L1 * G1 * G1, 35), isEps2: normals(K * B * L2, 36),
      };
      const shapes = { eps1: [B, L1, G1, G1], eps2: [B, L2], eps1b: [B, L1, G1, G1], eps2b: [B, L2], isEps1: [K * B, L1, G1, G1], isEps2: [K * B, L2] };
      inputs.set('x', { dtype: 'U32', shape: [B, C, S, S], data: xs } as SafeTensor);
      inputs.set('x2', { dtype: 'U32', shape: [B, C, S, S], data: x2s } as SafeTensor);
      for (const [key, data] of Object.entries(noise)) inputs.set(key, { shape: shapes[key as keyof typeof shapes], data });
      for (const [name, v] of init) inputs.set(`init/${name}`, { shape: [...model.params.get(name).shape], data: v });
      writeTensors(file('inputs.safetensors'), inputs, { step: String(STEP), k: String(K), levelSeed: String(LEVEL_SEED) });

      // The TypeScript side, on the same tensors.
      await E.tidyAsync(async () => {
        const x = E.fromArray(xs, [B, C, S, S], 'u32');
        const x2 = E.fromArray(x2s, [B, C, S, S], 'u32');
        const t = (key: keyof typeof noise): E.Tensor => E.fromArray(noise[key], shapes[key]);
        const eps = { eps1: t('eps1'), eps2: t('eps2') };
        const readBuffers = async (prefix: string): Promise<void> => {
          for (const [name, b] of model.buffers.entriesList()) ts.set(`${prefix}buffer/${name}`, Float32Array.from(await b.data()));
        };

        model.bn.training = false;
        await E.noGrad(async () => {
          const q = model.posterior(x);
          const z1 = E.add(q.mu1, E.mul(eps.eps1, E.exp(q.logSigma1)));
          const z2 = E.add(q.mu2, E.mul(eps.eps2, E.exp(q.logSigma2)));
          const prior = model.priorParams(z1, model.priorFeatures(z2), 0);
          const logits = model.pixelLogits(x, model.pixelFeatures(z1));
          const perImage = async (v: E.Tensor): Promise<Float32Array> => Float32Array.from(await E.sum(v.view([B, v.size / B]), 1).data());
          ts.set('logits', Float32Array.from(await logits.data()));
          ts.set('reconstruction', await perImage(E.softmaxCrossEntropy(logits, x, 1)));
          ts.set('kl1', await perImage(E.klDiagGaussians(q.mu1, q.logSigma1, prior.mu, prior.logSigma)));
          ts.set('kl2', await perImage(E.klStandardNormal(q.mu2, q.logSigma2)));
          for (const [key, v] of Object.entries(q)) ts.set(key, Float32Array.from(await v.data()));
          const is = model.importanceNll(x, K, { eps1: t('isEps1'), eps2: t('isEps2') });
          for (const [key, v] of Object.entries(is)) ts.set(`is/${key}`, Float32Array.from(await v.data()));
        });
        const level = model.levelNoise(1, B, LEVEL_SEED, 'middle');
        for (const [key, v] of Object.entries(level)) ts.set(`level/${key}`, Float32Array.from(await v.data()));
        const g = await model.generate({ z2: level.z2 }, level);
        ts.set('sample/z1', Float32Array.from(await g.z1.data()));
        ts.set('sample/images', Float32Array.from(await g.images.data()));
        const rec = await model.reconstruct(x, 'middle', level);
        ts.set('reconstruct/images', Float32Array.from(await rec.images.data()));
        for (const v of [g.images, g.z1, g.z2, rec.images, rec.z1, rec.z2]) v?.dispose();

        model.bn.training = true;
        model.bn.momentum = 1;
        const params = model.params.tensors();
        const terms = model.terms(x, eps, schedule(config, STEP));
        const grads = E.grad(terms.loss, params);
        for (const [key, v] of Object.entries(terms)) ts.set(`train/${key}`, Float32Array.from(await v.data()));
        const names = model.params.names();
        for (let i = 0; i < names.length; i++) ts.set(`grad/${names[i]}`, grads[i] ? Float32Array.from(await grads[i]!.data()) : new Float32Array(params[i].size));
        await readBuffers('train/');

        E.noGrad(() => {
          for (const [s, [xb, e1, e2]] of [[x, eps.eps1, eps.eps2], [x2, t('eps1b'), t('eps2b')]].entries()) {
            model.bn.momentum = 1 / (s + 1);
            model.terms(xb as E.Tensor, { eps1: e1 as E.Tensor, eps2: e2 as E.Tensor }, { alpha1: 1, alpha2: 1, sigmaFloor: 0 });
          }
        });
        model.bn.momentum = 1;
        model.bn.training = false;
        await readBuffers('reest/');
      });
    } finally {
      model.dispose();
    }

    const run = await runPythonCode(PYTHON, [caseDir]);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!) as { seconds: number; initMaxAbsDiff: number };
    const twin = readTensors(file('twin.safetensors')).tensors;
    const py = (name: string): Float32Array => f32(twin, name);
    const report: Record<string, number> = { pythonSeconds: summary.seconds, initMaxAbsDiff: summary.initMaxAbsDiff };

    // Same seed, same initial parameters (the generator of src/nn/init.ts, float32 rounding).
    expect(summary.initMaxAbsDiff).toBeLessThan(1e-6);

    // Logits with running statistics: max relative error 1e-4.
    const logits = compareArrays(py('logits'), ts.get('logits')!);
    report.logitsRel = logits.relative;
    expect(logits.relative).toBeLessThan(1e-4);
    for (const key of ['mu1', 'logSigma1', 'mu2', 'logSigma2']) {
      const d = compareArrays(py(key), ts.get(key)!);
      report[`${key}Rel`] = d.relative;
      expect(d.relative, key).toBeLessThan(1e-4);
    }

    // Per-image nats: reconstruction, KL1, KL2 and the IS-NLL pieces within 1e-3.
    for (const key of ['reconstruction', 'kl1', 'kl2', 'is/nll', 'is/negElbo', 'is/kl', 'is/negElboSameSamples']) {
      const d = maxAbsDiff(py(key), ts.get(key)!);
      report[`${key}Nats`] = d;
      expect(d, key).toBeLessThan(1e-3);
    }
    for (const key of ['reconstruction', 'kl1', 'kl2', 'is/nll']) report[`${key}Image0`] = ts.get(key)![0];
    const nll = ts.get('is/nll')!;
    const same = ts.get('is/negElboSameSamples')!;
    for (let i = 0; i < B; i++) expect(nll[i]).toBeLessThanOrEqual(same[i] + 1e-3); // Jensen, image by image

    // Sampling with the same per-level noise: z1 (drawn position by position) and the sub-pixels
    // (inverse CDF of each softmax). A draw can flip only where a uniform lies within rounding of a CDF
    // step, and a flip changes what follows it, so the images must agree almost everywhere.
    for (const key of ['z2', 'eps1', 'uniforms']) expect(maxAbsDiff(py(`level/${key}`), ts.get(`level/${key}`)!), `level noise ${key}`).toBeLessThan(1e-6);
    const z1 = compareArrays(py('sample/z1'), ts.get('sample/z1')!);
    report.sampleZ1Rel = z1.relative;
    expect(z1.relative).toBeLessThan(1e-4);
    for (const key of ['sample/images', 'reconstruct/images']) {
      const a = py(key);
      const b = ts.get(key)!;
      let equal = 0;
      for (let i = 0; i < b.length; i++) equal += a[i] === b[i] ? 1 : 0;
      report[`${key}Equal`] = equal / b.length;
      expect(equal / b.length, key).toBeGreaterThan(0.95);
    }

    // Training mode: the loss terms (nats/dim), every gradient (1e-3 relative), the overwritten statistics.
    for (const key of ['loss', 'reconstruction', 'kl1', 'kl2']) {
      const d = compareArrays(py(`train/${key}`), ts.get(`train/${key}`)!);
      report[`train/${key}Rel`] = d.relative;
      expect(d.relative, key).toBeLessThan(1e-4);
    }
    let gradRel = 0;
    let gradWorst = '';
    let gradCount = 0;
    for (const [name, v] of ts) {
      if (!name.startsWith('grad/')) continue;
      gradCount += 1;
      const d = compareArrays(py(name), v);
      if (d.relative > gradRel) [gradRel, gradWorst] = [d.relative, name];
    }
    report.gradRel = gradRel;
    expect(gradCount).toBe([...twin.keys()].filter((n) => n.startsWith('grad/')).length);
    expect(gradCount).toBeGreaterThan(100);
    expect(gradRel, `worst gradient ${gradWorst}`).toBeLessThan(1e-3);
    for (const prefix of ['train/', 'reest/']) {
      let worst = 0;
      for (const [name, v] of ts) if (name.startsWith(`${prefix}buffer/`)) worst = Math.max(worst, compareArrays(py(name), v).relative);
      report[`${prefix}bnStatsRel`] = worst;
      expect(worst, prefix).toBeLessThan(1e-3); // a variance of values far from 0 loses digits to cancellation: measured up to 8e-5
    }
    console.log(`twin-hier ${label}: ${JSON.stringify(report)}`);
  }, 240_000);

  it('reads CIFAR-10 batches, image files, zips, the demo set and colour-MNIST into the same bytes, labels and split', async () => {
    const r = rng(41);
    const cifar = join(dir.path, 'cifar');
    const images = join(dir.path, 'images');
    mkdirSync(cifar);
    mkdirSync(join(images, 'more'), { recursive: true });
    const records = (n: number): Uint8Array => {
      const b = Uint8Array.from({ length: n * CIFAR_RECORD }, () => Math.floor(r() * 256));
      for (let i = 0; i < n; i++) b[i * CIFAR_RECORD] = i % 10;
      return b;
    };
    writeFileSync(join(cifar, 'data_batch_1.bin'), records(6));
    writeFileSync(join(cifar, 'data_batch_2.bin'), records(3));
    writeFileSync(join(cifar, 'test_batch.bin'), records(4));
    writeFileSync(join(cifar, 'broken.bin'), new Uint8Array(CIFAR_RECORD + 1));
    const png = (w: number, h: number): Uint8Array => encodePng({ width: w, height: h, data: Uint8Array.from({ length: w * h * 4 }, () => Math.floor(r() * 256)) });
    writeFileSync(join(images, 'a.png'), png(13, 9));
    writeFileSync(join(images, 'more', 'b.png'), png(5, 7));
    writeFileSync(join(images, 'notes.txt'), 'not an image');
    writeFileSync(join(images, 'c.zip'), zipSync({ 'c.png': png(16, 16), 'd/e.png': png(3, 3), '.hidden.png': png(2, 2) }));
    const cases: [string, string[], { size: number; heldOut?: number; splitSeed?: number }][] = [
      ['cifar', [cifar], { size: 8 }],
      ['images', [images], { size: 6, heldOut: 0.34, splitSeed: 3 }],
    ];
    if (demoColourPath()) cases.push(['demo', ['demo'], { size: 8 }]);
    if (colourMnistPath()) cases.push(['colour-mnist', ['colour-mnist'], { size: 16, heldOut: 0.2, splitSeed: 9 }]);

    const script = String.raw`
import sys, json
import numpy as np
from pixelvae_torch import safetensors as st
from pixelvae_torch.colour_data import load_colour
out, meta = {}, {}
try:
    import PIL
    meta['pillow'] = 'yes'
except ImportError:
    meta['pillow'] = 'no'
for name, paths, size, held, seed in json.loads(sys.argv[2]):
    try:
        s = load_colour(paths, size, held, seed)
    except ValueError as error:
        meta[name] = json.dumps({'error': str(error)})
        continue
    for part, images, labels in (('train', s.train, s.train_labels), ('held', s.held_out, s.held_out_labels)):
        out[name + '/' + part] = images
        out[name + '/' + part + 'Labels'] = labels
    meta[name] = json.dumps({'description': s.description, 'skipped': [f for f, _ in s.skipped]})
with open(sys.argv[1], 'wb') as f:
    f.write(st.encode(out, meta))
`;
    const spec = cases.map(([name, paths, o]) => [name, paths, o.size, o.heldOut ?? 0.1, o.splitSeed ?? 2017]);
    await runPythonCode(script, [dir.file('colour.safetensors'), JSON.stringify(spec)]);
    const twin = readTensors(dir.file('colour.safetensors'));
    for (const [name, paths, o] of cases) {
      const split = await loadColourData(paths, o);
      const meta = JSON.parse(twin.metadata[name]) as { description: string; skipped: string[]; error?: string };
      if (name === 'images' && twin.metadata.pillow === 'no') {
        // Without Pillow the twin reads no image file, and says what to install.
        expect(meta.error).toMatch(/no usable image.*\n.*python3-pil/s);
        continue;
      }
      expect(meta.error, name).toBeUndefined();
      expect(meta.description, name).toBe(split.description);
      expect(meta.skipped, name).toEqual(split.skipped.map((k) => k.name));
      for (const [part, set] of [['train', split.train], ['held', split.heldOut]] as const) {
        const bytes = twin.tensors.get(`${name}/${part}`)!;
        expect(bytes.shape, `${name} ${part}`).toEqual([set.count, 3, o.size, o.size]);
        expect(Buffer.from(bytes.data as Uint8Array).equals(Buffer.from(set.images)), `${name} ${part} bytes`).toBe(true);
        expect(Array.from(twin.tensors.get(`${name}/${part}Labels`)!.data), `${name} ${part} labels`).toEqual(Array.from(set.labels));
      }
    }
  }, 120_000);

  it('takes a 2-process data-parallel step (gloo) with global batch-norm statistics: the 1-process loss, gradients and statistics', async () => {
    // Each rank holds half of the batch; the model normalises by the whole batch's statistics (an
    // autograd all-reduce), so after averaging the ranks' gradients (what DDP does) the step is
    // the one-process step on the whole batch.
    const script = String.raw`
import os, sys, json, socket
import torch, torch.distributed as dist, torch.multiprocessing as mp
from pixelvae_torch import hier

def setup():
    m = hier.build(hier.make_config('tiny', {'seed': 3, 'alpha1Iters': 3, 'betaIters': 10}))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith('.bias') or n.endswith('.beta'):
                p.uniform_(-0.2, 0.2, generator=g)
    x = torch.randint(0, 256, (8, 3, 8, 8), generator=g)
    noise = {'eps1': torch.randn(8, 4, 4, 4, generator=g), 'eps2': torch.randn(8, 8, generator=g)}
    return m, x, noise

def step(m, x, noise):
    out = m.losses(x, 2, noise)
    names = m.trainable_names()
    params = m.checkpoint_tensors()
    grads = torch.autograd.grad(out['loss'], [params[n] for n in names], allow_unused=True)
    grads = [torch.zeros_like(params[n]) if g is None else g for n, g in zip(names, grads)]
    stats = [t.clone() for n, t in params.items() if n.startswith('buffer/')]
    return out['loss'].detach().reshape(1), grads, stats

def worker(rank, port, q):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method='tcp://127.0.0.1:%d' % port, rank=rank, world_size=2)
    m, x, noise = setup()
    lo, hi = 4 * rank, 4 * rank + 4
    loss, grads, stats = step(m, x[lo:hi], {k: v[lo:hi] for k, v in noise.items()})
    for t in [loss] + grads:
        dist.all_reduce(t)
        t /= 2
    if rank == 0:  # plain arrays: torch tensors would travel as shared memory the exiting rank takes with it
        q.put((loss.numpy(), [g.numpy() for g in grads], [t.numpy() for t in stats]))
    dist.destroy_process_group()

if __name__ == '__main__':
    torch.set_num_threads(1)
    m, x, noise = setup()
    loss1, grads1, stats1 = step(m, x, noise)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, port, q)) for r in range(2)]
    for p in procs:
        p.start()
    loss2, grads2, stats2 = q.get(timeout=120)
    loss2, grads2, stats2 = torch.from_numpy(loss2), [torch.from_numpy(g) for g in grads2], [torch.from_numpy(t) for t in stats2]
    for p in procs:
        p.join(60)
    rel = lambda a, b: float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
    print(json.dumps({'loss1': float(loss1), 'loss2': float(loss2),
                      'gradRel': max(rel(a, b) for a, b in zip(grads2, grads1)),
                      'statsRel': max(rel(a, b) for a, b in zip(stats2, stats1)),
                      'exit': [p.exitcode for p in procs]}))
`;
    const file = dir.file('ddp_step.py');
    writeFileSync(file, script);
    const run = await runPython([file]);
    const r = JSON.parse(run.stdout.trim().split('\n').pop()!) as { loss1: number; loss2: number; gradRel: number; statsRel: number; exit: number[] };
    console.log(`twin-hier data-parallel: ${JSON.stringify(r)}`);
    expect(r.exit).toEqual([0, 0]);
    expect(Math.abs(r.loss2 - r.loss1) / Math.abs(r.loss1)).toBeLessThan(1e-5);
    expect(r.gradRel).toBeLessThan(1e-4);
    expect(r.statsRel).toBeLessThan(1e-5);
  }, 120_000);

  it('refuses a bad configuration with the TypeScript model\'s message', async () => {
    const bad: Record<string, unknown>[] = [
      { latent1: 0 }, { dims: [4] }, { z1Level: 3 }, { filter: 4, bnEps: 0 }, { encoderBlocks: [1, 2] }, { imageSize: 10 }, { alpha2Iters: -1, klPenalty: -1 },
    ];
    const expected = bad.map((o) => {
      try {
        hierConfig('tiny', o);
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    });
    const run = await runPythonCode(String.raw`
import sys, json
from pixelvae_torch import hier
out = []
for o in json.loads(sys.argv[1]):
    try:
        hier.make_config('tiny', o)
        out.append('accepted')
    except ValueError as error:
        out.append(str(error))
print(json.dumps(out))
`, [JSON.stringify(bad)]);
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual(expected);
    expect(expected.every((m) => m.startsWith('invalid hierarchical model configuration: '))).toBe(true);
  });
});
