// Fetching the model zoo from the app's own origin: the manifest (absent or empty: the app works as
// without a zoo), and a model's file, checked against the manifest (size, SHA-256) and decoded as a
// checkpoint (float16 tensors widened to float32 by src/io/safetensors.ts) before anything uses it.
import { decodeCheckpoint, type Checkpoint } from '../io/checkpoint';
import { parseManifest, ZooError, type ZooEntry, type ZooManifest } from './manifest';

/** Where the app serves the zoo, relative to its base URL. */
export const ZOO_DIR = 'models/';
export const MANIFEST_FILE = 'manifest.json';

export type FetchLike = (url: string) => Promise<Pick<Response, 'ok' | 'status' | 'headers' | 'text' | 'arrayBuffer'>>;

/**
 * The zoo's manifest, or null when this build has none (404, or the dev server's HTML fallback).
 * A manifest that exists but is broken throws a ZooError naming the problems.
 */
export async function fetchManifest(base: string, fetchImpl: FetchLike = fetch): Promise<ZooManifest | null> {
  const url = `${base}${ZOO_DIR}${MANIFEST_FILE}`;
  const response = await fetchImpl(url);
  if (response.status === 404) return null;
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('text/html')) return null;
  if (!response.ok) throw new ZooError(`${url}: HTTP ${response.status}`);
  return parseManifest(await response.text(), url);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Refuses bytes that are not the manifest's file (truncated download, a file replaced after the manifest was written). */
export async function checkZooBytes(entry: ZooEntry, bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength !== entry.bytes) {
    throw new ZooError(`${entry.file}: ${bytes.byteLength} bytes, the manifest says ${entry.bytes} (a partial download, or the file changed after the manifest was written; run npm run zoo again)`);
  }
  const hash = await sha256Hex(bytes);
  if (hash !== entry.sha256) throw new ZooError(`${entry.file}: SHA-256 ${hash.slice(0, 12)}… does not match the manifest's ${entry.sha256.slice(0, 12)}… (the file changed after the manifest was written)`);
}

/** A model's file from the app's origin, checked against its manifest entry. */
export async function fetchZooModel(entry: ZooEntry, base: string, fetchImpl: FetchLike = fetch): Promise<Uint8Array> {
  const url = `${base}${ZOO_DIR}${entry.file}`;
  const response = await fetchImpl(url);
  const type = response.headers.get('content-type') ?? '';
  if (!response.ok || type.includes('text/html')) throw new ZooError(`${url}: not found (HTTP ${response.status}); the manifest lists a model this build does not have`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  await checkZooBytes(entry, bytes);
  return bytes;
}

/**
 * Decodes a zoo file as a checkpoint and checks it is what the manifest says: the preset, float16
 * storage for every float tensor, no optimizer state.
 */
export function decodeZooModel(entry: ZooEntry, bytes: Uint8Array): Checkpoint {
  const checkpoint = decodeCheckpoint(bytes, entry.file);
  if (checkpoint.config.preset !== entry.preset) {
    throw new ZooError(`${entry.file}: holds preset '${checkpoint.config.preset}', the manifest says '${entry.preset}'`);
  }
  if (checkpoint.optim.size > 0) throw new ZooError(`${entry.file}: holds optimizer state (${checkpoint.optim.size} tensors); zoo files ship without it`);
  const wide = [...checkpoint.params].filter(([, t]) => t.dtype === 'F32' && t.stored !== 'F16').map(([name]) => name);
  if (wide.length > 0) throw new ZooError(`${entry.file}: ${wide.length} tensors stored as F32 (e.g. '${wide[0]}'); zoo files store F16`);
  return checkpoint;
}
