// The IDX format of the original MNIST files (http://yann.lecun.com/exdb/mnist/):
//   bytes 0-1  zero
//   byte  2    element type (0x08 unsigned byte, 0x09 signed byte, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)
//   byte  3    number of dimensions
//   then one big-endian u32 per dimension, then the elements, row-major.
// We only need unsigned bytes (images and labels); other element types are named and refused.
// Platform-free: works on bytes, never on files.

export class IdxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdxError';
  }
}

export interface IdxArray {
  /** Dimensions as stored, e.g. [60000, 28, 28] for the training images. */
  dims: number[];
  /** The elements, row-major (a view into the input bytes, not a copy). */
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

const hex = (v: number): string => `0x${v.toString(16).padStart(2, '0')}`;

/**
 * Parses an IDX file of unsigned bytes. `name` (a file name) prefixes every error. Throws IdxError
 * on a bad magic number, an unsupported element type, a truncated header or body, or trailing bytes.
 */
export function parseIdx(bytes: Uint8Array, name = 'IDX file'): IdxArray {
  if (bytes.length < 4) {
    throw new IdxError(`${name}: too short for an IDX header (${bytes.length} bytes; the magic number alone is 4)`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), hex).join(' ');
    throw new IdxError(`${name}: bad magic number ${magic} (an IDX file starts with 0x00 0x00, a type byte and a rank byte); is it gzipped or another format?`);
  }
  const type = bytes[2];
  if (!(type in TYPE_NAMES)) throw new IdxError(`${name}: unknown IDX element type ${hex(type)}`);
  if (type !== 0x08) {
    throw new IdxError(`${name}: element type ${hex(type)} (${TYPE_NAMES[type]}) is not supported; only unsigned bytes (0x08) are`);
  }
  const rank = bytes[3];
  if (rank === 0) throw new IdxError(`${name}: header declares 0 dimensions`);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new IdxError(`${name}: header is truncated: ${rank} dimensions need ${headerBytes} header bytes, the file has ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const shape = dims.join('x');
  const body = bytes.length - headerBytes;
  if (body < count) {
    throw new IdxError(
      `${name}: IDX file too short: header says ${shape} (${count} bytes of data) but only ${body} bytes follow the header`,
    );
  }
  if (body > count) {
    throw new IdxError(`${name}: IDX file has ${body - count} unexpected trailing bytes after the ${shape} data (corrupt or concatenated?)`);
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** Writes unsigned bytes as an IDX file (for tests and for exporting subsets). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new IdxError(`encodeIdx: ${data.length} bytes for dims ${dims.join('x')} (${count})`);
  if (dims.length === 0 || dims.length > 255) throw new IdxError(`encodeIdx: rank ${dims.length} must be 1..255`);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
