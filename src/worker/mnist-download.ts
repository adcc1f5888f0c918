// The four MNIST files for the browser: fetched gzipped (about 11 MB instead of 53 MB, whatever the
// host does about compression) with the bytes received reported as they arrive, checked
// (decodeMnistFile), and kept in Cache Storage so a later visit reads them from this browser and
// fetches nothing. Only a download that passed the checks is cached; a cached copy that fails them
// (a damaged disk cache, an older format) is dropped and fetched again.
import { MNIST_FILE_NAMES, decodeMnistFile, type MnistFiles } from '../data/mnist';

/** Bump when the served bytes change meaning; older caches are deleted on first use. */
const CACHE_NAME = 'pixelvae-mnist-v1';
const CACHE_PREFIX = 'pixelvae-mnist-';
/** At most this often a progress line (each one is a message to the page and a React render). */
const PROGRESS_EVERY_MS = 250;

type Key = keyof MnistFiles;

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** The whole size of an IDX file from its first bytes (null until the header is in, or if not IDX). */
function idxSizeFromHead(chunks: readonly Uint8Array[]): number | null {
  const head = new Uint8Array(64);
  let n = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, head.length - n);
    head.set(c.subarray(0, take), n);
    n += take;
    if (n === head.length) break;
  }
  if (n < 4 || head[0] !== 0 || head[1] !== 0 || head[2] !== 0x08) return null;
  const rank = head[3];
  const headerBytes = 4 + 4 * rank;
  if (rank === 0 || headerBytes > n) return null;
  const view = new DataView(head.buffer);
  let count = 1;
  for (let i = 0; i < rank; i++) count *= view.getUint32(4 + 4 * i, false);
  return headerBytes + count;
}

/** Cache Storage where the browser offers it (not in insecure contexts or some private modes). */
async function openCache(): Promise<Cache | null> {
  if (typeof caches === 'undefined') return null;
  try {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith(CACHE_PREFIX) && n !== CACHE_NAME).map((n) => caches.delete(n)));
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/** The checked IDX bytes of a cached file, or null (absent, unreadable or damaged: then dropped). */
async function fromCache(cache: Cache, key: Key, url: URL): Promise<Uint8Array | null> {
  try {
    const hit = await cache.match(url);
    if (!hit) return null;
    return await decodeMnistFile(key, new Uint8Array(await hit.arrayBuffer()));
  } catch {
    await cache.delete(url).catch(() => false);
    return null;
  }
}

/**
 * Fetches, checks and caches the four files under `base` (`<name>.gz`). `onStatus` gets progress
 * lines: bytes received of the total (summed over the files still to fetch) and the percentage.
 */
export async function loadMnistFiles(base: URL, onStatus?: (m: string) => void): Promise<MnistFiles> {
  const keys = Object.keys(MNIST_FILE_NAMES) as Key[];
  const urls = Object.fromEntries(keys.map((k) => [k, new URL(`${MNIST_FILE_NAMES[k]}.gz`, base)])) as Record<Key, URL>;
  const files: Partial<MnistFiles> = {};
  const cache = await openCache();
  if (cache) {
    onStatus?.('Reading MNIST from this browser’s cache…');
    for (const k of keys) {
      const bytes = await fromCache(cache, k, urls[k]);
      if (bytes) files[k] = bytes;
    }
  }
  const missing = keys.filter((k) => !files[k]);
  if (missing.length > 0) {
    const loaded = new Map<Key, number>(missing.map((k) => [k, 0]));
    const totals = new Map<Key, number | null>();
    let lastReport = 0;
    const report = (force = false): void => {
      const now = Date.now();
      if (!onStatus || (!force && now - lastReport < PROGRESS_EVERY_MS)) return;
      lastReport = now;
      const got = [...loaded.values()].reduce((a, b) => a + b, 0);
      const sizes = [...totals.values()];
      const known = sizes.length === missing.length && sizes.every((s) => s !== null);
      const total = known ? sizes.reduce<number>((a, b) => a + (b ?? 0), 0) : 0;
      const of = missing.length === keys.length ? 'MNIST' : `MNIST (${missing.length} of ${keys.length} files)`;
      onStatus(known && total > 0 ? `Downloading ${of}: ${mb(got)} of ${mb(total)} MB (${Math.min(100, Math.floor((100 * got) / total))}%)` : `Downloading ${of}: ${mb(got)} MB`);
    };
    report(true);
    // allSettled: the good files are checked and cached before a bad one's error is thrown, so a
    // retry downloads only what failed.
    const outcomes = await Promise.allSettled(
      missing.map(async (k) => {
        const name = `${MNIST_FILE_NAMES[k]}.gz`;
        let response: Response;
        try {
          response = await fetch(urls[k]);
        } catch (error) {
          throw new Error(`MNIST file ${name} could not be fetched (${error instanceof Error ? error.message : String(error)}); check the connection and build again`);
        }
        if (!response.ok) throw new Error(`MNIST file ${name} could not be fetched: HTTP ${response.status}`);
        const length = Number(response.headers.get('Content-Length'));
        // A host may send the .gz with `Content-Encoding: gzip` (vite preview's sirv does): then
        // Content-Length counts the bytes on the wire but the body arrives decoded, as the raw IDX
        // file, whose size its header tells once the first bytes are in.
        const encoded = (response.headers.get('Content-Encoding') ?? 'identity') !== 'identity';
        totals.set(k, !encoded && Number.isFinite(length) && length > 0 ? length : null);
        const chunks: Uint8Array[] = [];
        let received = 0;
        if (response.body) {
          const reader = response.body.getReader();
          for (;;) {
            let part: ReadableStreamReadResult<Uint8Array>;
            try {
              part = await reader.read();
            } catch (error) {
              throw new Error(`MNIST file ${name}: the download broke off after ${received} bytes (${error instanceof Error ? error.message : String(error)}); nothing was cached, build again to retry`);
            }
            if (part.done) break;
            chunks.push(part.value);
            received += part.value.length;
            loaded.set(k, received);
            if (encoded && totals.get(k) === null) totals.set(k, idxSizeFromHead(chunks));
            report();
          }
        }
        // A line per finished file, however fast the connection (the throttle may have hidden the rest).
        report(true);
        const declared = totals.get(k);
        if (!encoded && declared && received !== declared) {
          throw new Error(`MNIST file ${name}: received ${received} of ${declared} bytes; nothing was cached, build again to retry`);
        }
        const bytes = new Uint8Array(received);
        let at = 0;
        for (const c of chunks) {
          bytes.set(c, at);
          at += c.length;
        }
        files[k] = await decodeMnistFile(k, bytes);
        if (cache) {
          // The cache holds gzip either way (11 MB rather than 55); decodeMnistFile reads both.
          const body = bytes[0] === 0x1f ? bytes : new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'));
          // Best effort: a full quota only means the next visit downloads again.
          await cache.put(urls[k], new Response(body, { headers: { 'Content-Type': 'application/gzip' } })).catch(() => undefined);
        }
      }),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    report(true);
  }
  return files as MnistFiles;
}
