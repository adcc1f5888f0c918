"""Colour image sets for the hierarchical twin, as src/data/colour.ts and colour-node.ts build them.

Sources: CIFAR-10 binary batches (1 label byte + 3x32x32 planar bytes per record), the bundled demo
set ('demo': public/colour-demo/colour-demo-32.bin, CIFAR records built by
scripts/build-colour-demo.mjs), 'colour-mnist' (public/colour-mnist/colour-mnist-32.bin, the same
format, scripts/build-colour-mnist.mjs), folders (searched recursively, sorted, depth 4) and zips of those.
Image files (PNG, JPEG) are decoded with Pillow when it is installed, composited over white,
centre-cropped and area-resized as toPlanar does (PNG gives the TypeScript's bytes; a JPEG decoder may
round differently from jpeg-js). Every image is area-resized to the model's size with the
TypeScript's arithmetic (data.resize_set). The split is the TypeScript's: a CIFAR folder's
test_batch.bin is the held-out set; anything else is split by SeededRng(splitSeed, 7)'s shuffle.
Images are uint8 arrays [N, 3, S, S] (image, colour plane, row, column).
"""
from __future__ import annotations

import io
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .data import ImageSet, SeededRng, resize_set

CIFAR_SIZE = 32
CIFAR_RECORD = 1 + 3 * CIFAR_SIZE * CIFAR_SIZE
DEMO_RELATIVE_PATH = 'public/colour-demo/colour-demo-32.bin'
#: Built by scripts/build-colour-mnist.mjs in the same record format.
COLOUR_MNIST_RELATIVE_PATH = 'public/colour-mnist/colour-mnist-32.bin'
_IGNORED = re.compile(r'(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|\.[^/]*$)')


class ColourDataError(ValueError):
    """Colour data that cannot be used; the message names the file and what to do."""


@dataclass
class ColourSet:
    name: str
    images: np.ndarray  # uint8 [N, 3, S, S]
    labels: np.ndarray  # uint8 [N]

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        return int(self.images.shape[2])


@dataclass
class ColourSplit:
    #: uint8 [N, 3, S, S] images, as the trainer indexes them.
    train: np.ndarray
    held_out: np.ndarray
    train_labels: np.ndarray
    held_out_labels: np.ndarray
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    #: Where the data came from and how it was split (colour-node.ts's description, word for word).
    description: str = ''


def parse_cifar10(data: bytes, name: str = 'CIFAR-10 batch') -> ColourSet:
    if len(data) == 0 or len(data) % CIFAR_RECORD != 0:
        raise ColourDataError(f'{name}: {len(data)} bytes is not a whole number of CIFAR-10 records ({CIFAR_RECORD} bytes each: a label byte and 3x32x32 pixels)')
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].copy()
    bad = np.nonzero(labels > 9)[0]
    if len(bad):
        raise ColourDataError(f'{name}: record {int(bad[0])} has label {int(labels[bad[0]])}; CIFAR-10 labels are 0..9 (not a CIFAR-10 batch, or CIFAR-100\'s layout?)')
    images = records[:, 1:].reshape(-1, 3, CIFAR_SIZE, CIFAR_SIZE).copy()
    return ColourSet(name, images, labels)


def resize_planar(images: np.ndarray, size: int) -> np.ndarray:
    """resizePlanarSet: each colour plane area-resized with the TypeScript's arithmetic, rounded half up."""
    n, c, h, _ = images.shape
    if h == size:
        return images
    planes = ImageSet('planes', images.reshape(n * c, h, h), np.zeros(n * c, dtype=np.uint8))
    return resize_set(planes, size).images.reshape(n, c, size, size)


def sniff_image(data: bytes) -> Optional[str]:
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return 'png'
    if data[:3] == b'\xff\xd8\xff':
        return 'jpeg'
    if data[:4] == b'GIF8':
        return 'gif'
    if data[:2] == b'BM':
        return 'bmp'
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'webp'
    return None


def _area_weights(src: int, out: int, start: float, span: float):
    scale = span / out
    rows = []
    for o in range(out):
        lo = start + o * scale
        hi = lo + scale
        row = []
        for s in range(max(0, math.floor(lo)), min(src, math.ceil(hi))):
            overlap = min(hi, s + 1) - max(lo, s)
            if overlap > 0:
                row.append((s, overlap / scale))
        rows.append(row)
    return rows


def _resize_area(plane: np.ndarray, size: int, x0: float, y0: float, span: float) -> np.ndarray:
    """resizeArea of preprocess.ts over a window: float64 sums in the same order, float32 intermediates."""
    h, w = plane.shape
    wx, wy = _area_weights(w, size, x0, span), _area_weights(h, size, y0, span)
    src = plane.astype(np.float64)
    tmp = np.zeros((h, size), dtype=np.float64)
    for o, row in enumerate(wx):
        acc = np.zeros(h)
        for index, weight in row:
            acc = acc + weight * src[:, index]
        tmp[:, o] = acc
    tmp = tmp.astype(np.float32).astype(np.float64)
    out = np.zeros((size, size), dtype=np.float64)
    for o, row in enumerate(wy):
        acc = np.zeros(size)
        for index, weight in row:
            acc = acc + weight * tmp[index, :]
        out[o, :] = acc
    return out.astype(np.float32)


def to_planar(rgba: np.ndarray, size: int, fit: str = 'crop') -> np.ndarray:
    """toPlanar: alpha over white, centre crop ('crop') or black padding ('pad'), area resize; uint8 [3, size, size]."""
    h, w = rgba.shape[:2]
    side = min(w, h) if fit == 'crop' else max(w, h)
    x0, y0 = (w - side) / 2, (h - side) / 2
    a = rgba[:, :, 3].astype(np.float64) / 255
    out = np.zeros((3, size, size), dtype=np.uint8)
    for c in range(3):
        plane = (rgba[:, :, c].astype(np.float64) * a + 255 * (1 - a)).astype(np.float32)
        r = _resize_area(plane, size, x0, y0, side).astype(np.float64)
        out[c] = np.minimum(255, np.maximum(0, np.floor(r + 0.5))).astype(np.uint8)
    return out


def _decode_image(data: bytes, name: str) -> np.ndarray:
    try:
        from PIL import Image  # optional: only image files need it
    except ImportError:
        raise ColourDataError('image files need Pillow (apt-get install python3-pil); CIFAR-10 .bin batches and "demo" do not') from None
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert('RGBA'), dtype=np.uint8)


def build_colour_set(files: Sequence[Tuple[str, bytes]], size: int, name: str, fit: str = 'crop',
                     on_skip: Optional[Callable[[str, str], None]] = None) -> Tuple[ColourSet, List[Tuple[str, str]], int]:
    """buildColourSet: (set, skipped [(file, reason)], files used). ColourDataError when nothing is usable."""
    chunks: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    skipped: List[Tuple[str, str]] = []
    used = 0

    def skip(file: str, reason: str) -> None:
        skipped.append((file, reason))
        if on_skip:
            on_skip(file, reason)

    def visit(file: str, data: bytes, depth: int) -> None:
        nonlocal used
        if len(data) == 0:
            return skip(file, 'empty file')
        if data[:4] == b'PK\x03\x04':
            if depth > 2:
                return skip(file, 'zip nested too deeply')
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    entries = {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}
            except (zipfile.BadZipFile, OSError, RuntimeError) as error:
                return skip(file, f'corrupt zip ({error})')
            for entry in sorted(entries):
                if entry.endswith('/') or _IGNORED.search(entry):
                    continue
                visit(f'{file}:{entry}', entries[entry], depth + 1)
            return
        if file.lower().endswith('.bin') and len(data) % CIFAR_RECORD == 0:
            try:
                s = parse_cifar10(data, file)
            except ColourDataError as error:
                return skip(file, str(error))
            chunks.append(resize_planar(s.images, size))
            labels.append(s.labels)
            used += 1
            return
        kind = sniff_image(data)
        if kind is None:
            reason = (f'not a CIFAR-10 batch ({len(data)} bytes is not a multiple of {CIFAR_RECORD})' if file.lower().endswith('.bin')
                      else 'not a PNG, JPEG, GIF, BMP or WebP image')
            return skip(file, reason)
        try:
            planar = to_planar(_decode_image(data, file), size, fit)
        except ColourDataError as error:
            return skip(file, str(error))
        except Exception as error:  # a corrupt image: skipped with the decoder's words, as the TypeScript does
            return skip(file, f'cannot decode {kind}: {error}')
        chunks.append(planar[None])
        labels.append(np.array([used % 256], dtype=np.uint8))
        used += 1

    for file, data in files:
        visit(file, data, 0)
    if not chunks:
        listed = '\n'.join(f'  - {f}: {r}' for f, r in skipped[:10])
        where = files[0][0] if len(files) == 1 else f'{len(files)} files'
        more = f'; skipped {len(skipped)}:\n{listed}{chr(10) + "  ..." if len(skipped) > 10 else ""}' if skipped else ''
        raise ColourDataError(f'no usable image in {where}{more}')
    return ColourSet(name, np.concatenate(chunks), np.concatenate(labels)), skipped, used


def split_colour_set(s: ColourSet, held_out_fraction: float = 0.1, seed: int = 2017) -> Tuple[ColourSet, ColourSet]:
    """splitColourSet: a seeded shuffle (SeededRng(seed, 7), j = floor(u * (i + 1))) holds out a fraction."""
    if not (0 <= held_out_fraction < 1):
        raise ColourDataError(f'held-out fraction {held_out_fraction} must be in [0, 1)')
    if s.count < 2:
        raise ColourDataError(f'{s.name}: {s.count} image(s) cannot be split into train and held-out sets (need at least 2)')
    order = list(range(s.count))
    rng = SeededRng(seed, 7)
    for i in range(s.count - 1, 0, -1):
        j = int(math.floor(rng.next_u32() / 4294967296 * (i + 1)))
        order[i], order[j] = order[j], order[i]
    held = min(s.count - 1, max(1 if held_out_fraction > 0 else 0, math.floor(s.count * held_out_fraction + 0.5)))
    held_idx = np.array(sorted(order[:held]), dtype=np.int64)
    train_idx = np.array(sorted(order[held:]), dtype=np.int64)
    return (ColourSet(f'{s.name} (train)', s.images[train_idx], s.labels[train_idx]),
            ColourSet(f'{s.name} (held-out)', s.images[held_idx], s.labels[held_idx]))


def _generated_path(relative: str) -> Optional[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    for p in (os.path.join(os.getcwd(), relative), os.path.join(here, '..', '..', relative)):
        if os.path.exists(p):
            return os.path.normpath(p)
    return None


def demo_colour_path() -> Optional[str]:
    return _generated_path(DEMO_RELATIVE_PATH)


def colour_mnist_path() -> Optional[str]:
    return _generated_path(COLOUR_MNIST_RELATIVE_PATH)


def _list_files(folder: str, depth: int = 0) -> List[str]:
    out = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith('.') or entry == '__MACOSX':
            continue
        path = os.path.join(folder, entry)
        if os.path.isdir(path):
            if depth < 4:
                out += _list_files(path, depth + 1)
        elif os.path.isfile(path):
            out.append(path)
    return out


def _read(paths: Sequence[str]) -> List[Tuple[str, bytes]]:
    out = []
    for p in paths:
        with open(p, 'rb') as f:
            out.append((p, f.read()))
    return out


def _fmt(x: float) -> str:
    """A number as JavaScript's template literal shows it (0.1, 2017, 1e-7)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def load_colour(paths: Sequence[str], size: int, held_out: float = 0.1, split_seed: int = 2017, fit: str = 'crop',
                on_skip: Optional[Callable[[str, str], None]] = None) -> ColourSplit:
    """loadColourData: folders, zips, CIFAR-10 .bin batches, image files, 'demo' or 'colour-mnist'."""
    if not paths:
        raise ColourDataError('no data given (a folder, a zip, CIFAR-10 .bin files, "demo" or "colour-mnist")')
    resolved: List[str] = []
    for p in paths:
        if p == 'demo':
            demo = demo_colour_path()
            if demo is None:
                raise ColourDataError(f'the demo colour set is not built (expected {DEMO_RELATIVE_PATH}); run: node scripts/build-colour-demo.mjs')
            resolved.append(demo)
            continue
        if p == 'colour-mnist':
            found = colour_mnist_path()
            if found is None:
                raise ColourDataError(f'the colour-MNIST set is not built (expected {COLOUR_MNIST_RELATIVE_PATH}); run: node scripts/build-colour-mnist.mjs')
            resolved.append(found)
            continue
        if not os.path.exists(p):
            raise ColourDataError(f'cannot read {p}: no such file or folder')
        resolved += _list_files(p) if os.path.isdir(p) else [p]
    tests = [p for p in resolved if os.path.basename(p).lower() == 'test_batch.bin']
    train_paths = [p for p in resolved if p not in tests] if tests and len(resolved) > len(tests) else resolved
    name = ', '.join(paths)
    built, skipped, _ = build_colour_set(_read(train_paths), size, name, fit, on_skip)
    if train_paths is not resolved:
        held, held_skipped, _ = build_colour_set(_read(tests), size, f'{name} (test_batch)', fit, on_skip)
        return ColourSplit(built.images, held.images, built.labels, held.labels, skipped + held_skipped,
                           f'{name}: {built.count} train images, {held.count} held-out (CIFAR-10 test_batch), {size}x{size}')
    train, held = split_colour_set(built, held_out, split_seed)
    note = f', {len(skipped)} files skipped' if skipped else ''
    return ColourSplit(train.images, held.images, train.labels, held.labels, skipped,
                       f'{name}: {train.count} train / {held.count} held-out images (seeded split {_fmt(held_out)}, seed {split_seed}), {size}x{size}{note}')
