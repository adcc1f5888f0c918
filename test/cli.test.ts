// The command line, in process: bad flags, then a tiny model through train, eval, sample,
// reconstruct and knn on real (resized) MNIST, with the files each command writes.
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main';
import * as E from '../src/engine';
import { GpuMnist } from '../src/data/gpu-dataset';
import { subset } from '../src/data/mnist';
import { loadMnist } from '../src/data/mnist-node';
import { resizeSet } from '../src/data/preprocess';
import { knnError as knnReference } from '../src/engine/reference/estimators';
import { nd } from '../src/engine/reference/ndarray';
import { decodePng } from '../src/io/png-node';
import { embed } from '../src/models/latent';
import { loadMnistCheckpoint } from '../src/models/mnist-checkpoint';

const dir = mkdtempSync(join(tmpdir(), 'pixelvae-cli-'));
const tinyModel = ['--image-size', '8', '--width', '4', '--layers', '1', '--latent', '2', '--filter', '3', '--input-filter', '3', '--output-width', '4',
  '--encoder-dims', '4,4,6,6', '--decoder-dims', '6,6,4', '--warmup', '0'];
const tinyRun = ['--batch', '8', '--train-limit', '256', '--valid-limit', '64', '--log-every', '2'];
const printed: string[] = [];

beforeAll(() => {
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterAll(() => vi.restoreAllMocks());

const lastJson = (): Record<string, unknown> => JSON.parse(printed.filter((l) => l.startsWith('{')).at(-1)!);

describe('pixelvae command line', () => {
  it('rejects unknown commands and flags with exit code 2 and says why', async () => {
    expect(await main(['fly'])).toBe(2);
    expect(printed.at(-1)).toMatch(/unknown command 'fly'/);
    expect(await main(['train', '--bogus', '1'])).toBe(2);
    expect(printed.at(-1)).toMatch(/unknown flag --bogus/);
    expect(await main(['train', '--preset', 'gated-pixelvae-cond', '--steps', 'many'])).toBe(2);
    expect(printed.at(-1)).toMatch(/--steps expects an integer/);
    expect(await main(['train', '--preset', 'nope'])).toBe(2);
    expect(printed.at(-1)).toMatch(/unknown preset 'nope'/);
    expect(await main(['train', '--preset', 'gated-pixelvae', '--feature-norm', 'rms'])).toBe(2);
    expect(printed.at(-1)).toMatch(/featureNorm must be one of tanh, rms-tanh \(got rms\)/);
  });

  it('trains, evaluates, samples, reconstructs and classifies with a tiny model', async () => {
    const out = join(dir, 'run');
    expect(await main(['train', '--preset', 'gated-pixelvae-cond', ...tinyModel, ...tinyRun, '--steps', '6', '--valid-every', '3', '--out', out])).toBe(0);
    const trained = lastJson();
    expect(trained.steps).toBe(6);
    expect(Number.isFinite(trained.best_valid_neg_elbo_nats)).toBe(true);
    for (const f of ['last.safetensors', 'best.safetensors', 'log.jsonl']) expect(existsSync(join(out, f)), f).toBe(true);

    const checkpoint = join(out, 'last.safetensors');
    expect(await main(['eval', '--checkpoint', checkpoint, '--k', '3', '--limit', '40'])).toBe(0);
    const evaluated = lastJson();
    expect(evaluated.images).toBe(40);
    expect(evaluated.importance_samples).toBe(3);
    expect(String(evaluated.data)).toMatch(/dynamically binarized MNIST/);

    const samples = join(dir, 'samples.png');
    expect(await main(['sample', '--checkpoint', checkpoint, '--n', '4', '--seed', '5', '--out', samples])).toBe(0);
    const grid = decodePng(new Uint8Array(readFileSync(samples)));
    // 4 tiles of 8x8 at scale 2 in 2 columns and 2 rows, 2 px of padding: 2 * 16 + 3 * 2 = 38 px square.
    expect([grid.width, grid.height]).toEqual([38, 38]);
    // The tiles hold the draws of the full-recompute sampler (the CLI samples incrementally) for seed
    // 5's z (offset [0, 1]) and uniforms (offset [0, 2]), pixel for pixel; the padding is mid gray.
    const { model: sampler } = loadMnistCheckpoint(new Uint8Array(readFileSync(checkpoint)));
    const drawn = await E.tidyAsync(async () =>
      sampler.sample(E.randomNormal([4, 2], 5, [0, 1]), E.randomUniform([4, 1, 8, 8], 5, [0, 2]), undefined, { method: 'full' }).images.data(),
    );
    sampler.dispose();
    const red = (x: number, y: number): number => grid.data[4 * (y * grid.width + x)];
    let mismatched = 0;
    for (let k = 0; k < 4; k++) {
      for (let y = 0; y < 16; y++) {
        for (let x = 0; x < 16; x++) {
          const want = drawn[k * 64 + (y >> 1) * 8 + (x >> 1)] * 255;
          if (red(2 + (k % 2) * 18 + x, 2 + Math.floor(k / 2) * 18 + y) !== want) mismatched++;
        }
      }
    }
    expect(mismatched, 'tile pixels unlike the full sampler\'s draws').toBe(0);
    expect([red(0, 0), red(18, 10), red(37, 37)]).toEqual([128, 128, 128]);
    const ones = Array.from(drawn).reduce((a, v) => a + v, 0);
    expect(ones).toBeGreaterThan(0);
    expect(ones).toBeLessThan(256);

    const rec = join(dir, 'rec.png');
    expect(await main(['reconstruct', '--checkpoint', checkpoint, '--input', 'e2e/fixtures/digit-7.png', '--samples', '2', '--out', rec])).toBe(0);
    expect(existsSync(rec)).toBe(true);

    expect(await main(['knn', '--checkpoint', checkpoint, '--train-limit', '200', '--test-limit', '50', '--k', '3'])).toBe(0);
    const knn = lastJson();
    expect([knn.train_images, knn.test_images]).toEqual([200, 50]);
    // The printed error is the float64 reference k-NN error on the model's encoder means of the same
    // images (the CLI's data: the first 200 training images, resized to 8x8; the first 50 test images).
    const split = await loadMnist();
    const data = GpuMnist.upload({ train: resizeSet(subset(split.train, 'train', 0, 200), 8), valid: resizeSet(split.valid, 8), test: resizeSet(split.test, 8) });
    const { model: encoder } = loadMnistCheckpoint(new Uint8Array(readFileSync(checkpoint)));
    const trainCodes = await embed(encoder, data.train, { batchSize: 100 });
    const testCodes = await embed(encoder, data.test, { batchSize: 100, limit: 50 });
    encoder.dispose();
    data.dispose();
    const wantError = knnReference(nd([200, 2], trainCodes.means), trainCodes.labels, nd([50, 2], testCodes.means), testCodes.labels, 3);
    expect(knn.test_error).toBe(+wantError.toFixed(4));

    // Resume continues from the saved step.
    expect(await main(['train', '--resume', checkpoint, ...tinyRun, '--steps', '2', '--valid-every', '0', '--out', join(dir, 'resumed')])).toBe(0);
    expect(lastJson().steps).toBe(8);
  });

  it('says clearly when a checkpoint is missing or corrupt', async () => {
    expect(await main(['eval', '--checkpoint', join(dir, 'none.safetensors')])).toBe(1);
    expect(printed.at(-1)).toMatch(/no such file|ENOENT/);
    expect(await main(['sample', '--checkpoint', 'e2e/fixtures/digit-7.png'])).toBe(1);
    expect(printed.at(-1)).toMatch(/pixelvae sample: /);
  });
});
