// scripts/build-colour-mnist.mjs: deterministic, in the demo set's record format (read by the same
// loaders), and with shape, colour and texture drawn independently (checked on the labels and factors
// it writes, and on the pixels themselves).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR_RECORD, parseCifar10, type ColourImageSet } from '../src/data/colour';
import { loadColourData } from '../src/data/colour-node';
import { loadMnistFiles } from '../src/data/mnist-node';
import { parseIdx } from '../src/data/idx';

const COUNT = 3000;
const dirs: string[] = [];
let set: ColourImageSet;
let bytes: Uint8Array;
interface Factors {
  count: number;
  palette: string[];
  textures: string[];
  digit: number[];
  mnistIndex: number[];
  foreground: number[];
  background: number[];
  foregroundTexture: number[];
  backgroundTexture: number[];
}
let factors: Factors;
let palette: { name: string; rgb: number[] }[];

function build(...flags: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'colour-mnist-'));
  dirs.push(dir);
  execFileSync(process.execPath, ['scripts/build-colour-mnist.mjs', '--out', dir, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  return dir;
}
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Pearson's chi-squared statistic of independence for paired categories, and its degrees of freedom. */
function chiSquared(a: number[], b: number[]): { stat: number; df: number } {
  const ka = Math.max(...a) + 1;
  const kb = Math.max(...b) + 1;
  const table = Array.from({ length: ka }, () => new Array<number>(kb).fill(0));
  a.forEach((x, i) => table[x][b[i]]++);
  const rows = table.map((r) => r.reduce((s, v) => s + v, 0));
  const cols = table[0].map((_, j) => table.reduce((s, r) => s + r[j], 0));
  const n = a.length;
  let stat = 0;
  for (let i = 0; i < ka; i++) for (let j = 0; j < kb; j++) {
    const e = (rows[i] * cols[j]) / n;
    if (e > 0) stat += (table[i][j] - e) ** 2 / e;
  }
  return { stat, df: (rows.filter((r) => r > 0).length - 1) * (cols.filter((c) => c > 0).length - 1) };
}

/** The chi-squared distribution's upper 0.1% point (Wilson-Hilferty; within 1% for df >= 10). */
const chi2Critical = (df: number): number => df * (1 - 2 / (9 * df) + 3.09 * Math.sqrt(2 / (9 * df))) ** 3;

beforeAll(() => {
  const dir = build('--count', String(COUNT));
  bytes = new Uint8Array(readFileSync(join(dir, 'colour-mnist-32.bin')));
  set = parseCifar10(bytes, 'colour-mnist-32.bin');
  factors = JSON.parse(readFileSync(join(dir, 'colour-mnist-32.factors.json'), 'utf8')) as Factors;
  palette = (JSON.parse(readFileSync(join(dir, 'SOURCES.json'), 'utf8')) as { palette: { name: string; rgb: number[] }[] }).palette;
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('colour-MNIST builder', () => {
  it('is deterministic: the same flags give the same bytes; a smaller --count is a prefix; another seed differs', () => {
    const again = build('--count', String(COUNT));
    expect(sha(join(again, 'colour-mnist-32.bin'))).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(readFileSync(join(again, 'colour-mnist-32.factors.json'), 'utf8')).toBe(JSON.stringify(factors) + '\n');
    const small = new Uint8Array(readFileSync(join(build('--count', '40'), 'colour-mnist-32.bin')));
    expect(Buffer.compare(small, bytes.subarray(0, 40 * CIFAR_RECORD))).toBe(0);
    const other = new Uint8Array(readFileSync(join(build('--count', '40', '--seed', '7'), 'colour-mnist-32.bin')));
    expect(Buffer.compare(other, bytes.subarray(0, 40 * CIFAR_RECORD))).not.toBe(0);
  });

  it('writes CIFAR-10 records (the demo set format) with the digit as the label, read by the Node loader', async () => {
    expect(bytes.length).toBe(COUNT * CIFAR_RECORD);
    expect(set.count).toBe(COUNT);
    expect(set.size).toBe(32);
    expect(Array.from(set.labels)).toEqual(factors.digit);
    // The label is the MNIST label of the image it was drawn from.
    const mnist = await loadMnistFiles();
    const labels = parseIdx(mnist.trainLabels).data;
    for (let i = 0; i < COUNT; i++) expect(set.labels[i]).toBe(labels[factors.mnistIndex[i]]);
    expect(new Set(factors.mnistIndex).size).toBe(COUNT); // no MNIST image used twice
    const split = await loadColourData([join(dirs[0], 'colour-mnist-32.bin')], { size: 32 });
    expect(split.train.count + split.heldOut.count).toBe(COUNT);
    expect(split.heldOut.count).toBe(COUNT / 10);
    const small = await loadColourData([join(dirs[0], 'colour-mnist-32.bin')], { size: 8 });
    expect(small.train.size).toBe(8);
  });

  it('draws colours and textures independently of the digit and of each other', () => {
    const pairs: [keyof Factors, keyof Factors][] = [
      ['digit', 'foreground'],
      ['digit', 'background'],
      ['digit', 'foregroundTexture'],
      ['digit', 'backgroundTexture'],
      ['foreground', 'foregroundTexture'],
      ['foreground', 'backgroundTexture'],
      ['foregroundTexture', 'backgroundTexture'],
    ];
    for (const [a, b] of pairs) {
      const { stat, df } = chiSquared(factors[a] as number[], factors[b] as number[]);
      expect(stat, `${a} vs ${b}: chi2 ${stat.toFixed(1)} on ${df} df`).toBeLessThan(chi2Critical(df));
    }
    // The statistic does see a dependence when there is one (the test can fail).
    const leaky = factors.foreground.map((c, i) => (i % 5 === 0 ? factors.digit[i] % palette.length : c));
    const { stat, df } = chiSquared(factors.digit, leaky);
    expect(stat).toBeGreaterThan(chi2Critical(df));
    // Every colour and texture occurs, and the background never equals the foreground.
    expect(new Set(factors.foreground).size).toBe(palette.length);
    expect(new Set(factors.backgroundTexture).size).toBe(factors.textures.length);
    factors.foreground.forEach((f, i) => expect(factors.background[i]).not.toBe(f));
  });

  it('the pixels show the recorded factors: stroke pixels average to the foreground colour, the border to the background', () => {
    const plane = 32 * 32;
    const nearest = (rgb: number[]): number => {
      let best = 0;
      palette.forEach((p, k) => {
        const d = (q: number[]): number => q.reduce((s, v, c) => s + (v - rgb[c]) ** 2, 0);
        if (d(p.rgb) < d(palette[best].rgb)) best = k;
      });
      return best;
    };
    const mnistAlpha = (i: number): Float32Array => {
      // Where the digit is: the brightest tenth of the grey image (taken as the channel mean's distance from the border colour).
      const out = new Float32Array(plane);
      const base = i * 3 * plane;
      const border = [0, 1, 2].map((c) => set.images[base + c * plane]);
      for (let p = 0; p < plane; p++) out[p] = [0, 1, 2].reduce((s, c) => s + Math.abs(set.images[base + c * plane + p] - border[c]), 0);
      return out;
    };
    let fgRight = 0;
    let bgRight = 0;
    const checked = 300;
    for (let i = 0; i < checked; i++) {
      const base = i * 3 * plane;
      // Background: the outermost ring (MNIST digits leave it empty), averaged over its texture.
      const ring: number[] = [];
      for (let k = 0; k < 32; k++) ring.push(k, 31 * 32 + k, k * 32, k * 32 + 31);
      const bg = [0, 1, 2].map((c) => ring.reduce((s, p) => s + set.images[base + c * plane + p], 0) / ring.length);
      if (nearest(bg) === factors.background[i]) bgRight++;
      // Foreground: the 25 pixels farthest from the background's colour, averaged.
      const far = Array.from(mnistAlpha(i)).map((v, p) => [v, p]).sort((x, y) => y[0] - x[0]).slice(0, 25).map((x) => x[1]);
      const fg = [0, 1, 2].map((c) => far.reduce((s, p) => s + set.images[base + c * plane + p], 0) / far.length);
      if (nearest(fg) === factors.foreground[i]) fgRight++;
    }
    // Textures darken or brighten by up to 30%, so a few colours read as a neighbour; most must match.
    expect(bgRight / checked).toBeGreaterThan(0.85);
    expect(fgRight / checked).toBeGreaterThan(0.7);
  });

  it('refuses bad flags with a usage message', () => {
    expect(() => execFileSync(process.execPath, ['scripts/build-colour-mnist.mjs', '--count', '0', '--out', tmpdir()], { stdio: 'pipe' })).toThrow(/--count must be an integer/);
    expect(() => execFileSync(process.execPath, ['scripts/build-colour-mnist.mjs', '--bogus'], { stdio: 'pipe' })).toThrow(/unknown flag --bogus/);
  });
});
