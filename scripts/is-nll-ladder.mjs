#!/usr/bin/env node
// How loose is the page's IS-NLL at k = 10 importance samples, against the paper's N = 5000?
// Evaluates a shipped MNIST model (public/models/<id>.safetensors, the float16 weights) with K
// samples per test image and, from the same draws, the estimate of the first k for every k of a
// ladder (scripts/zoo-eval.py --ladder): the estimates are nested, so each k's difference from K is
// paired per image. Appends (or replaces) the model's record in docs/figures/is-nll-ladder.json,
// which scripts/results.mjs renders under Table 1.
//
// usage: node scripts/is-nll-ladder.mjs [--model table1-gated-pixelvae] [--k 1000]
//        [--ladder 1,10,100,1000] [--limit 200] [--device cpu|cuda] [--threads N]
//        [--out docs/figures/is-nll-ladder.json]   (a trial run: --out elsewhere, so the record stays as measured)

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuHardware } from './zoo-lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = process.env.PIXELVAE_PYTHON ?? '/usr/bin/python3';

const opts = { model: 'table1-gated-pixelvae', k: '1000', ladder: '1,10,100,1000', limit: '200', device: 'cpu', threads: String(cpus().length), out: 'docs/figures/is-nll-ladder.json' };
for (let i = 2; i < process.argv.length; i++) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in opts) || i + 1 >= process.argv.length) {
    process.stderr.write(`is-nll-ladder: unknown or valueless option ${process.argv[i]}; options: ${Object.keys(opts).map((o) => `--${o}`).join(' ')}\n`);
    process.exit(2);
  }
  opts[key] = process.argv[++i];
}
const OUT = resolve(opts.out);
const file = join(ROOT, 'public', 'models', `${opts.model}.safetensors`);
if (!existsSync(file)) {
  process.stderr.write(`is-nll-ladder: ${file} does not exist (a shipped model's id, as in public/models/manifest.json)\n`);
  process.exit(2);
}

const args = ['scripts/zoo-eval.py', '--checkpoint', `public/models/${opts.model}.safetensors`, '--k', opts.k, '--ladder', opts.ladder,
  '--limit', opts.limit, '--device', opts.device, '--threads', opts.threads];
const hardware = opts.device === 'cuda' ? 'CUDA GPU (PyTorch)' : cpuHardware();
const started = new Date();
const env = { ...process.env, PYTHONPATH: [join(ROOT, 'python'), process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONDONTWRITEBYTECODE: '1' };
const stdout = await new Promise((resolveRun, reject) => {
  const child = spawn(PYTHON, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.on('data', (d) => (text += d));
  child.on('error', reject);
  child.on('close', (code) => (code === 0 ? resolveRun(text) : reject(new Error(`is-nll-ladder: zoo-eval exited with ${code}`))));
});
const result = JSON.parse(stdout.trim().split('\n').pop());
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
} catch {
  // Outside a checkout the record simply names no commit.
}
const record = {
  model: opts.model,
  sha256: createHash('sha256').update(readFileSync(file)).digest('hex'),
  images: result.images,
  k: result.k,
  seed: result.seed,
  ladder: result.ladder,
  kl: result.kl,
  negElbo: result.neg_elbo,
  command: `node scripts/is-nll-ladder.mjs ${['model', 'k', 'ladder', 'limit', 'device'].map((o) => `--${o} ${opts[o]}`).join(' ')}`,
  hardware,
  torch: result.torch,
  threads: Number(opts.threads),
  started: started.toISOString(),
  seconds: Math.round((Date.now() - started.getTime()) / 1000),
  commit,
};
const data = existsSync(OUT) ? JSON.parse(readFileSync(OUT, 'utf8')) : {
  about: 'IS-NLL of shipped models from the first k of K importance samples per test image (scripts/is-nll-ladder.mjs; scripts/results.mjs renders it under Table 1). minus_largest: the k-sample estimate minus the K-sample one, paired per image.',
  runs: [],
};
data.runs = [...data.runs.filter((r) => !(r.model === record.model && r.k === record.k && r.images === record.images)), record];
writeFileSync(`${OUT}.tmp`, `${JSON.stringify(data, null, 2)}\n`);
renameSync(`${OUT}.tmp`, OUT);
for (const r of record.ladder) {
  process.stdout.write(`k ${r.k}: IS-NLL ${r.is_nll.mean.toFixed(3)} ± ${r.is_nll.stderr.toFixed(3)}, minus k ${record.k}: ${r.minus_largest.mean.toFixed(3)} ± ${r.minus_largest.stderr.toFixed(3)} (n ${r.is_nll.n})\n`);
}
process.stdout.write(`written to ${OUT} (${record.seconds} s on ${hardware})\n`);
