// The command line, in process: bad flags, then a tiny model through train, eval, sample,
// reconstruct and knn on real (resized) MNIST, with the files each command writes.
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main';
import { decodePng } from '../src/io/png-node';

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
    expect(await main(['sample', '--checkpoint', checkpoint, '--n', '4', '--out', samples])).toBe(0);
    const grid = decodePng(new Uint8Array(readFileSync(samples)));
    expect(grid.width).toBeGreaterThan(16);

    const rec = join(dir, 'rec.png');
    expect(await main(['reconstruct', '--checkpoint', checkpoint, '--input', 'e2e/fixtures/digit-7.png', '--samples', '2', '--out', rec])).toBe(0);
    expect(existsSync(rec)).toBe(true);

    expect(await main(['knn', '--checkpoint', checkpoint, '--train-limit', '200', '--test-limit', '50', '--k', '3'])).toBe(0);
    const knn = lastJson();
    expect(knn.test_error).toBeGreaterThanOrEqual(0);
    expect(knn.test_error).toBeLessThanOrEqual(1);

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
