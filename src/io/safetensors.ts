// The safetensors format (https://github.com/huggingface/safetensors), encoded and decoded with
// strict validation. Layout:
//   8 bytes   N, the header length, u64 little-endian
//   N bytes   a UTF-8 JSON object: { name: { dtype, shape, data_offsets: [begin, end] }, ...,
//             "__metadata__": { string: string } } (may end with spaces for alignment)
//   the data  each tensor's bytes, little-endian, row-major, at [begin, end) relative to the data
//             start; the tensors tile the data exactly (no gaps, no overlaps, nothing after).
// Platform-free. Decoding copies every tensor out of the input, so the result does not alias it.

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

export type SafeDType = 'F32' | 'U32' | 'I32' | 'U8';
export type SafeData = Float32Array | Uint32Array | Int32Array | Uint8Array;

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: SafeData;
  /** Set when the file stored this tensor as F16: decoding widened it to F32 (exactly; every half is a float). */
  stored?: 'F16';
}

export interface SafetensorsFile {
  /** Tensors in file order (ordered by data offset). */
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
  /**
   * Byte ranges of the data (relative to its start) that no header entry describes: gaps between
   * tensors and bytes after the last one. Always empty unless decoded with `allowUnclaimed`.
   */
  unclaimed: [number, number][];
}

export interface DecodeOptions {
  /**
   * Report gaps and trailing bytes in `unclaimed` instead of failing. For callers that compare the
   * tensors with a model afterwards: a tensor whose header entry was deleted leaves such a gap, and
   * the model's list of names can then say which tensor is missing (checkpoint.ts).
   */
  allowUnclaimed?: boolean;
}

const ITEM_BYTES: Record<SafeDType, number> = { F32: 4, U32: 4, I32: 4, U8: 1 };
/** Read but not written: F16 (the model zoo's storage) is widened to F32 on load. */
const READ_ONLY_BYTES = { F16: 2 } as const;
type FileDType = SafeDType | keyof typeof READ_ONLY_BYTES;
const FILE_BYTES: Record<FileDType, number> = { ...ITEM_BYTES, ...READ_ONLY_BYTES };
/** dtypes the format defines that we do not read. */
const OTHER_DTYPES = ['F64', 'BF16', 'I64', 'I16', 'I8', 'U64', 'U16', 'BOOL', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64'];
/** The header size the reference implementation accepts at most (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function isSafeDType(value: unknown): value is SafeDType {
  return typeof value === 'string' && value in ITEM_BYTES;
}

function typedFor(dtype: SafeDType, buffer: ArrayBuffer): SafeData {
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer);
    case 'U32':
      return new Uint32Array(buffer);
    case 'I32':
      return new Int32Array(buffer);
    case 'U8':
      return new Uint8Array(buffer);
  }
}

/** One half's value, from its sign, exponent and fraction fields. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  return exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1024 + frac) * 2 ** (exp - 25);
}

/** Every half's float32 value, by bit pattern (256 KB, built on first use): a zoo model widens millions. */
let halfTable: Float32Array | null = null;

/** IEEE 754 half-precision bits (little-endian u16 values) widened to float32, exactly. */
export function halfToFloat32(halves: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfValue(h);
  }
  const table = halfTable;
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  return out;
}

function dtypeOfData(data: SafeData): SafeDType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function requireLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new SafetensorsError('safetensors: this host is big-endian; only little-endian hosts are supported');
}

/** Encodes tensors (in the given order) and string metadata. The data starts 8-byte aligned. */
export function encodeSafetensors(
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  requireLittleEndian();
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new SafetensorsError(`safetensors: metadata '${key}' is a ${typeof value}; metadata values must be strings`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new SafetensorsError(`safetensors: '__metadata__' cannot be a tensor name`);
    if (!isSafeDType(t.dtype)) throw new SafetensorsError(`safetensors: tensor '${name}' has unsupported dtype ${String(t.dtype)}`);
    if (dtypeOfData(t.data) !== t.dtype) {
      throw new SafetensorsError(`safetensors: tensor '${name}' is declared ${t.dtype} but its data is a ${t.data.constructor.name}`);
    }
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`safetensors: tensor '${name}' has shape [${t.shape.join(', ')}]; dimensions must be non-negative integers`);
    }
    if (elements(t.shape) !== t.data.length) {
      throw new SafetensorsError(`safetensors: tensor '${name}' has shape [${t.shape.join(', ')}] (${elements(t.shape)} elements) but ${t.data.length} values`);
    }
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Decodes and validates a safetensors file. Throws SafetensorsError naming what is wrong: truncated
 * file, header length beyond the file, header not JSON or not an object, bad metadata, unknown or
 * unsupported dtype, bad shape, offsets out of range, overlapping or leaving gaps, size not matching
 * the shape.
 */
export function decodeSafetensors(bytes: Uint8Array, name = 'safetensors file', options: DecodeOptions = {}): SafetensorsFile {
  requireLittleEndian();
  const fail = (message: string): never => {
    throw new SafetensorsError(`${name}: ${message}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, the 8-byte header length alone is missing`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8)) {
    fail(`header length ${declared} runs past the end of the file (${bytes.length - 8} bytes after the length field); truncated or not a safetensors file`);
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLength < 2) fail(`header length ${headerLength} is too small for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    return fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header JSON is not an object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const parsed: { name: string; dtype: FileDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, value] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('__metadata__ is not an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ '${k}' is a ${v === null ? 'null' : typeof v}; metadata values must be strings`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`tensor '${key}': entry is not an object`);
    const entry = value as Record<string, unknown>;
    const dtype = entry.dtype;
    if (!isSafeDType(dtype) && dtype !== 'F16') {
      if (typeof dtype === 'string' && OTHER_DTYPES.includes(dtype)) {
        fail(`tensor '${key}': dtype ${dtype} is valid safetensors but not supported here (supported: ${Object.keys(FILE_BYTES).join(', ')})`);
      }
      fail(`tensor '${key}': unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(FILE_BYTES).join(', ')})`);
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${key}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor '${key}': data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`tensor '${key}': data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength) {
      fail(`tensor '${key}': data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes); the file is truncated or corrupt`);
    }
    const s = shape as number[];
    const expected = elements(s) * FILE_BYTES[dtype as FileDType];
    if (end - begin !== expected) {
      fail(`tensor '${key}': shape [${s.join(', ')}] of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    parsed.push({ name: key, dtype: dtype as FileDType, shape: s, begin, end });
  }
  parsed.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  const unclaimed: [number, number][] = [];
  for (let i = 0; i < parsed.length; i++) {
    const t = parsed[i];
    if (t.begin < cursor) {
      fail(`tensor '${t.name}': data_offsets [${t.begin}, ${t.end}] overlap tensor '${parsed[i - 1].name}' [${parsed[i - 1].begin}, ${parsed[i - 1].end}]`);
    }
    if (t.begin > cursor) {
      if (!options.allowUnclaimed) fail(`tensor '${t.name}' starts at ${t.begin}, leaving a gap of ${t.begin - cursor} unused bytes before it`);
      unclaimed.push([cursor, t.begin]);
    }
    cursor = t.end;
  }
  if (cursor !== dataLength) {
    if (!options.allowUnclaimed) fail(`${dataLength - cursor} bytes after the last tensor are not described by the header (trailing data or a corrupt header)`);
    unclaimed.push([cursor, dataLength]);
  }
  const tensors = new Map<string, SafeTensor>();
  for (const t of parsed) {
    const copy = bytes.slice(dataStart + t.begin, dataStart + t.end);
    if (t.dtype === 'F16') tensors.set(t.name, { dtype: 'F32', shape: t.shape, data: halfToFloat32(new Uint16Array(copy.buffer)), stored: 'F16' });
    else tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: typedFor(t.dtype, copy.buffer) });
  }
  return { tensors, metadata, unclaimed };
}
