// The PyTorch twin's files, data, training and distribution against the TypeScript (python/pixelvae_torch):
// safetensors bytes both ways, the same data bits and random streams, a checkpoint moving TS -> PyTorch
// -> TS mid-run (and landing where an uninterrupted TS run lands), PyTorch checkpoints in the Node CLI,
// 2-process DDP equal to 1 process, a killed process, and bad checkpoints refused with the TS's words.
// Python: $PIXELVAE_PYTHON or /usr/bin/python3 (Debian's python3-torch; scripts/ensure-system-deps.sh).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as E from '../src/engine';
import { decodeCheckpoint, encodeCheckpoint, CheckpointError, type Checkpoint } from '../src/io/checkpoint';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../src/io/safetensors';
import { BINARIZATION_STREAM, SeededRng, fixedBinarization } from '../src/data/mnist';
import { loadMnist } from '../src/data/mnist-node';
import { resizeSet } from '../src/data/preprocess';
import { main } from '../src/cli/main';
import { useGpu } from './support/gpu';

const PYTHON = process.env.PIXELVAE_PYTHON ?? '/usr/bin/python3';
// Each test spawns Python (torch import: seconds) and Node CLI runs; on a loaded 2-core machine that takes minutes.
const SLOW = { timeout: 400_000 };
const dir = mkdtempSync(join(tmpdir(), 'pixelvae-twin-train-'));
const tinyModel = ['--preset', 'gated-pixelvae-cond', '--image-size', '8', '--width', '4', '--layers', '1', '--latent', '2', '--filter', '3',
  '--input-filter', '3', '--output-width', '4', '--encoder-dims', '4,4,6,6', '--decoder-dims', '6,6,4', '--warmup', '3'];
const tinyRun = ['--batch', '8', '--train-limit', '256', '--valid-limit', '16', '--log-every', '1', '--valid-every', '0', '--seed', '5'];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function python(args: string[], onStderr?: (text: string) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { env: { ...process.env, PYTHONPATH: 'python', PYTHONDONTWRITEBYTECODE: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    child.on('error', (e) => reject(new Error(`cannot run ${PYTHON} (set PIXELVAE_PYTHON, or run scripts/ensure-system-deps.sh): ${e.message}`)));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const twin = (args: string[], onStderr?: (text: string) => void): Promise<Run> => python(['-m', 'pixelvae_torch', ...args], onStderr);
const jsonLine = (text: string): Record<string, unknown> => JSON.parse(text.trim().split('\n').filter((l) => l.startsWith('{')).at(-1)!);
const ok = (r: Run): Run => {
  if (r.code !== 0) throw new Error(`python exited ${r.code ?? r.signal}:\n${r.stderr.slice(-3000)}`);
  return r;
};
const read = (path: string): Checkpoint => decodeCheckpoint(new Uint8Array(readFileSync(path)), path);

function maxDiff(a: Checkpoint, b: Checkpoint): number {
  let worst = 0;
  for (const [name, t] of a.params) {
    const u = b.params.get(name);
    if (!u) throw new Error(`missing ${name}`);
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u.data[i]));
  }
  return worst;
}

const printed: string[] = [];
beforeAll(async () => {
  const probe = await python(['-c', 'import torch, numpy; print(torch.__version__)']);
  if (probe.code !== 0) throw new Error(`${PYTHON} cannot import torch (run scripts/ensure-system-deps.sh or set PIXELVAE_PYTHON):\n${probe.stderr}`);
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterAll(() => vi.restoreAllMocks());
const lastPrinted = (): Record<string, unknown> => JSON.parse(printed.filter((l) => l.startsWith('{')).at(-1)!);

describe('PyTorch twin: files and data', SLOW, () => {
  it('re-encodes TS safetensors byte for byte, and writes bytes TS re-encodes identically', async () => {
    const rand = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
    const tensors = new Map<string, SafeTensor>([
      ['enc.1.weight', { dtype: 'F32', shape: [3, 1, 5, 5], data: rand(75) }],
      ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([-0.5]) }],
      ['empty', { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) }],
      ['count', { dtype: 'U32', shape: [3], data: new Uint32Array([0, 7, 0xffffffff]) }],
      ['signed', { dtype: 'I32', shape: [2], data: new Int32Array([-3, 2 ** 31 - 1]) }],
      ['bytes', { dtype: 'U8', shape: [7], data: new Uint8Array([0, 1, 2, 3, 250, 255, 9]) }],
      ['ünï/cødé 😀', { dtype: 'F32', shape: [1], data: new Float32Array([1e-30]) }],
    ]);
    const metadata = { note: 'tab\tquote" backslash\\ newline\n ctrl\u0001 € 😀', pixelvae_config: '{"x":1}' };
    const tsBytes = encodeSafetensors(tensors, metadata);
    writeFileSync(join(dir, 'ts.safetensors'), tsBytes);
    // Python writes a checkpoint from scratch, with numbers JSON.stringify formats in several ways.
    const script = `
import sys, numpy as np
from pixelvae_torch import safetensors as st, checkpoint as ck
t, m = st.decode(open(sys.argv[1] + '/ts.safetensors', 'rb').read())
open(sys.argv[1] + '/py-rewrite.safetensors', 'wb').write(st.encode(t, m))
config = {'preset': 'mnist-pixelcnn', 'sizes': {'a': 0.1, 'b': 1e-7, 'c': 2.5e25, 'd': 123456789.125, 'e': -0.0, 'f': 1e21, 'g': 1e-6, 'h': 100.0, 'i': [1, 2.5, True, None], 'j': 'é'},
          'step': 3, 'optimizer': {'name': 'adam', 'step': 3, 'lr': 3e-4}, 'data': {'dataset': 'mnist', 'split': {'train': 5}}, 'seed': 1}
params = {'w': np.arange(6, dtype=np.float32).reshape(2, 3) / 7}
optim = {'m/w': np.full((2, 3), 1e-9, dtype=np.float32)}
open(sys.argv[1] + '/py.safetensors', 'wb').write(ck.encode_checkpoint(config, params, optim))
`;
    ok(await python(['-c', script, dir]));
    expect(Buffer.from(readFileSync(join(dir, 'py-rewrite.safetensors'))).equals(Buffer.from(tsBytes))).toBe(true);
    const pyBytes = new Uint8Array(readFileSync(join(dir, 'py.safetensors')));
    const decoded = decodeCheckpoint(pyBytes, 'py.safetensors');
    expect(decoded.config.sizes).toEqual({ a: 0.1, b: 1e-7, c: 2.5e25, d: 123456789.125, e: 0, f: 1e21, g: 1e-6, h: 100, i: [1, 2.5, true, null], j: 'é' });
    expect(Array.from(decoded.optim.get('m/w')!.data)).toEqual(Array(6).fill(Math.fround(1e-9)));
    const again = encodeCheckpoint({ config: decoded.config, params: decoded.params, optim: decoded.optim });
    expect(Buffer.from(again).equals(Buffer.from(pyBytes))).toBe(true);
    expect(decodeSafetensors(pyBytes).tensors.get('w')!.shape).toEqual([2, 3]);
  });

  it('draws the same data bits and random streams as the TS code', async () => {
    await useGpu();
    const split = await loadMnist();
    const valid28 = fixedBinarization(split.valid.images, 2017, BINARIZATION_STREAM.valid);
    const test8 = fixedBinarization(resizeSet(split.test, 8).images, 99, BINARIZATION_STREAM.test);
    const order = new SeededRng(5, 3).shuffle(Uint32Array.from({ length: 1000 }, (_, i) => i));
    const seed = 2 ** 40 + 12345;
    const bits = (await E.tidyAsync(async () => E.randomBits([1001], seed, [7, 2]).data())) as Uint32Array;
    const normals = (await E.tidyAsync(async () => E.randomNormal([37, 3], 11, [4, 2]).data())) as Float32Array;
    const p = Float32Array.from({ length: 997 }, (_, i) => (i % 256) * Math.fround(1 / 255));
    const coins = (await E.tidyAsync(async () => E.bernoulli(E.fromArray(p, [997]), 3, [6, 1]).data())) as Float32Array;
    const sha = (a: ArrayBufferView): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
    const script = `
import json, hashlib, numpy as np
from pixelvae_torch import data as D
sha = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
m = D.load_mnist_split(28)
m8 = D.load_mnist_split(8, binarization_seed=99)
order = D.SeededRng(5, 3).shuffle(np.arange(1000, dtype=np.uint32))
seed = 2**40 + 12345
p = (np.arange(997) % 256).astype(np.float32) * np.float32(1/255)
print(json.dumps({'valid': sha(m.valid.images), 'test8': sha(m8.test.images), 'order': order.tolist(),
  'bits': D.random_bits(1001, seed, [7, 2]).tolist(), 'normals': D.random_normal((37, 3), 11, [4, 2]).reshape(-1).tolist(),
  'coins': D.bernoulli(p, 3, [6, 1]).tolist(), 'shard': D.random_normal((5,), 11, [4, 2], start=9).tolist()}))
`;
    const py = jsonLine(ok(await python(['-c', script])).stdout) as Record<string, string | number[]>;
    expect(py.valid).toBe(sha(valid28));
    expect(py.test8).toBe(sha(test8));
    expect(py.order).toEqual(Array.from(order));
    expect(py.bits).toEqual(Array.from(bits));
    expect(py.coins).toEqual(Array.from(coins));
    const pyNormals = py.normals as number[];
    let worst = 0;
    normals.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - pyNormals[i]))));
    expect(worst).toBeLessThan(3e-5); // float32 log/cos on the GPU vs numpy
    // A rank's shard (elements 9..13) is that slice of the whole stream.
    (py.shard as number[]).forEach((v, i) => expect(v).toBeCloseTo(normals[9 + i], 4));
  });
});

describe('PyTorch twin: training runs move between engines', SLOW, () => {
  it('a TS checkpoint trains on in PyTorch, lands where TS would, and goes back to the Node CLI', async () => {
    const tsA = join(dir, 'ts-a');
    const tsB = join(dir, 'ts-b');
    const py = join(dir, 'py-c');
    expect(await main(['train', ...tinyModel, ...tinyRun, '--steps', '3', '--out', tsA])).toBe(0);
    expect(await main(['train', ...tinyModel, ...tinyRun, '--steps', '5', '--out', tsB])).toBe(0);
    const r = ok(await twin(['train', '--resume', join(tsA, 'last.safetensors'), ...tinyRun, '--steps', '2', '--out', py]));
    expect(r.stderr).toMatch(/resumed at step 3/);
    expect(jsonLine(r.stdout).steps).toBe(5);
    const fromPy = read(join(py, 'last.safetensors'));
    const straight = read(join(tsB, 'last.safetensors'));
    expect(fromPy.config.step).toBe(5);
    expect(fromPy.config.optimizer.step).toBe(5);
    expect([...fromPy.params.keys()]).toEqual([...straight.params.keys()]);
    expect([...fromPy.optim.keys()]).toEqual([...straight.optim.keys()]);
    // Same batches, binarization, noise, warm-up and Adam state: 3 TS + 2 PyTorch steps = 5 TS steps.
    expect(maxDiff(fromPy, straight)).toBeLessThan(1e-4);
    expect(maxDiff(fromPy, read(join(tsA, 'last.safetensors')))).toBeGreaterThan(1e-3);

    // Back in the Node CLI: it resumes, evaluates (the same numbers PyTorch computes) and samples.
    expect(await main(['train', '--resume', join(py, 'last.safetensors'), ...tinyRun, '--steps', '2', '--out', join(dir, 'ts-d')])).toBe(0);
    expect(lastPrinted().steps).toBe(7);
    const checkpoint = join(py, 'last.safetensors');
    expect(await main(['eval', '--checkpoint', checkpoint, '--k', '3', '--limit', '40', '--seed', '2'])).toBe(0);
    const nodeEval = lastPrinted();
    const pyEval = jsonLine(ok(await twin(['eval', '--checkpoint', checkpoint, '--k', '3', '--limit', '40', '--seed', '2'])).stdout);
    expect(pyEval.images).toBe(40);
    expect(pyEval.importance_samples).toBe(3);
    expect(Number(pyEval.seconds)).toBeGreaterThan(0);
    for (const key of ['neg_elbo_nats', 'is_nll_nats', 'kl_nats']) expect(Math.abs(Number(pyEval[key]) - Number(nodeEval[key])), key).toBeLessThan(1e-3);
    const png = join(dir, 'node-samples.png');
    expect(await main(['sample', '--checkpoint', checkpoint, '--n', '4', '--out', png])).toBe(0);
    expect(existsSync(png)).toBe(true);
    const pyPng = join(dir, 'py-samples.png');
    ok(await twin(['sample', '--checkpoint', checkpoint, '--n', '4', '--out', pyPng]));
    expect(readFileSync(pyPng).subarray(1, 4).toString()).toBe('PNG');
  });

  it('a hierarchical TS checkpoint (parameters, batch-norm statistics, Adam) trains on in PyTorch where TS would land', async () => {
    const hierRun = ['--preset', 'tiny', '--eval-every', '0', '--eval-limit', '16', '--bn-batches', '2', '--log-every', '1', '--seed', '3'];
    const a = join(dir, 'hier-ts-2');
    const b = join(dir, 'hier-ts-3');
    const c = join(dir, 'hier-py-3');
    expect(await main(['hier-train', ...hierRun, '--steps', '2', '--out', a])).toBe(0);
    expect(await main(['hier-train', ...hierRun, '--steps', '3', '--out', b])).toBe(0);
    const r = ok(await twin(['train', '--resume', join(a, 'last.safetensors'), '--steps', '1', '--eval-every', '0', '--eval-limit', '16',
      '--bn-batches', '2', '--log-every', '1', '--seed', '3', '--out', c]));
    expect(jsonLine(r.stdout).steps).toBe(3);
    const fromPy = read(join(c, 'last.safetensors'));
    const straight = read(join(b, 'last.safetensors'));
    expect([...fromPy.params.keys()]).toEqual([...straight.params.keys()]); // buffer/... statistics included
    expect([...fromPy.params.keys()].some((k) => k.startsWith('buffer/'))).toBe(true);
    expect(maxDiff(fromPy, straight)).toBeLessThan(1e-4); // measured 1.9e-6
    expect(maxDiff(read(join(a, 'last.safetensors')), straight)).toBeGreaterThan(1e-2); // the step did change them
    const held = (dirName: string): number => JSON.parse(readFileSync(join(dirName, 'log.jsonl'), 'utf8').trim().split('\n').at(-1)!).held_out_bits_per_dim;
    expect(Math.abs(held(c) - held(b))).toBeLessThan(1e-3 * Math.abs(held(b)));
  });

  it('2 processes (gloo) give the parameters 1 process gives over the same global batches', async () => {
    const one = join(dir, 'ddp-1');
    const two = join(dir, 'ddp-2');
    const args = [...tinyModel, ...tinyRun, '--steps', '3'];
    ok(await twin(['train', ...args, '--nproc', '1', '--out', one]));
    const r = ok(await twin(['train', ...args, '--nproc', '2', '--out', two]));
    expect(jsonLine(r.stdout).processes).toBe(2);
    const a = read(join(one, 'last.safetensors'));
    const b = read(join(two, 'last.safetensors'));
    expect(b.config.step).toBe(3);
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
    expect(maxDiff(a, b)).toBeGreaterThanOrEqual(0);
    expect(maxDiff(a, read(join(dir, 'ts-a', 'last.safetensors')))).toBeLessThan(1e-4); // and both equal the TS run of 3 steps
  });

  it('a killed process stops the run with a clear error and the last checkpoint stays readable', async () => {
    const out = join(dir, 'killed');
    const last = join(out, 'last.safetensors');
    let killed = false;
    const r = await twin(['train', ...tinyModel, ...tinyRun, '--steps', '100000', '--nproc', '2', '--save-every', '1', '--out', out], (text) => {
      const pid = /rank 1 of 2: pid (\d+)/.exec(text)?.[1];
      if (!killed && pid && existsSync(last) && /train \[/.test(text)) {
        killed = true;
        process.kill(Number(pid), 'SIGKILL');
      }
    });
    expect(killed).toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/process 1 of 2 was killed by SIGKILL; the other processes were stopped/);
    expect(r.stderr).toMatch(/the last checkpoint .*last\.safetensors \(step \d+\) is complete: continue with --resume/);
    const checkpoint = read(last);
    expect(checkpoint.config.step).toBeGreaterThanOrEqual(1);
    expect(checkpoint.optim.size).toBeGreaterThan(0);
  });
});

describe('PyTorch twin: bad checkpoints', SLOW, () => {
  const nodeError = async (args: string[]): Promise<string> => {
    expect(await main(args)).toBe(1);
    return printed.at(-1)!.replace(/^pixelvae \w+: /, '');
  };
  /** Runs the twin's CLI on each argument list in one Python process (one torch import); exit codes and stderr. */
  const pyErrors = async (runs: string[][]): Promise<{ code: number; stderr: string }[]> => {
    const script = `
import io, json, sys, contextlib
from pixelvae_torch.cli import main
out = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    out.append({'code': code, 'stderr': err.getvalue()})
print(json.dumps(out))
`;
    return JSON.parse(ok(await python(['-c', script, JSON.stringify(runs)])).stdout.trim().split('\n').at(-1)!) as { code: number; stderr: string }[];
  };
  const message = (stderr: string): string => stderr.trim().split('\n').filter((l) => !/^eval k=/.test(l)).join('\n').replace(/^pixelvae_torch \w+: /, '');

  it('refuses corrupt, mismatched, non-finite and wrong files with the Node CLI\'s message', async () => {
    const good = join(dir, 'ddp-1', 'last.safetensors');
    const bytes = new Uint8Array(readFileSync(good));
    const cases: [string, Uint8Array | null, RegExp][] = [];
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 10));
    cases.push([truncated, null, /run past the end of the data.*not a valid checkpoint file/]);
    const checkpoint = read(good);
    const mismatched = join(dir, 'mismatched.safetensors');
    const params = new Map(checkpoint.params);
    const firstName = [...params.keys()][0];
    params.delete(firstName);
    params.set('stray.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    writeFileSync(mismatched, encodeCheckpoint({ config: checkpoint.config, params }));
    cases.push([mismatched, null, new RegExp(`does not fit this model; nothing was loaded:\\n.*missing tensor '${firstName.replace('.', '\\.')}'.*\\n.*unexpected tensor 'stray\\.weight'`)]);
    const nan = join(dir, 'nan.safetensors');
    const poisoned = new Map(checkpoint.params);
    const w = poisoned.get(firstName)!;
    const data = new Float32Array(w.data as Float32Array);
    data[3] = NaN;
    data[5] = -Infinity;
    poisoned.set(firstName, { ...w, data });
    writeFileSync(nan, encodeCheckpoint({ config: checkpoint.config, params: poisoned, optim: checkpoint.optim }));
    cases.push([nan, null, new RegExp(`'${firstName.replace('.', '\\.')}' \\[.*\\]: 2 of \\d+ values, first at index 3 \\(NaN\\)`)]);
    const configJson = join(dir, 'config.json');
    writeFileSync(configJson, JSON.stringify({ ...checkpoint.config }, null, 2));
    cases.push([configJson, null, /is the config JSON saved beside a checkpoint \(preset 'mnist-gated-pixelvae-cond', step 3\), not a checkpoint/]);
    const other = join(dir, 'other-tool.safetensors');
    writeFileSync(other, encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } }, { format: 'pt' }));
    cases.push([other, null, /not a PixelVAE Lab checkpoint: its safetensors metadata has no 'pixelvae_config'/]);
    const out = join(dir, 'never');
    const results = await pyErrors([...cases.map(([path]) => ['eval', '--checkpoint', path, '--limit', '8']), ['train', '--resume', nan, '--steps', '1', '--out', out]]);
    for (const [i, [path, , pattern]] of cases.entries()) {
      const fromNode = await nodeError(['eval', '--checkpoint', path, '--limit', '8']);
      expect(fromNode, path).toMatch(pattern);
      expect(results[i].code, path).toBe(1);
      expect(message(results[i].stderr), path).toBe(fromNode);
    }
    // Resuming training from a bad file refuses too, and writes nothing.
    const resumed = results.at(-1)!;
    expect(resumed.code).toBe(1);
    expect(resumed.stderr).toMatch(/non-finite values \(NaN or Inf\).*nothing was loaded/);
    expect(existsSync(join(out, 'last.safetensors'))).toBe(false);
    // The good file is untouched by all this and still loads.
    copyFileSync(good, join(dir, 'copy.safetensors'));
    expect(() => read(join(dir, 'copy.safetensors'))).not.toThrow(CheckpointError);
  });
});
