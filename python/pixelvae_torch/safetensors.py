"""The safetensors format, read and written byte-compatibly with src/io/safetensors.ts.

Layout: 8 bytes (u64 little-endian header length N), N bytes of UTF-8 JSON (``__metadata__`` first
when present, then each tensor's ``{dtype, shape, data_offsets}`` in file order; padded with spaces
to a multiple of 8 so the data starts 8-byte aligned), then the tensors' bytes, little-endian,
row-major, tiling the data exactly.

The JSON is produced the way JavaScript's ``JSON.stringify`` produces it (no spaces, numbers in
JavaScript's shortest form), so a file written here is the same bytes the TypeScript writes for the
same tensors and metadata. No safetensors package is installable here, hence this module.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from decimal import Decimal
from typing import Dict, Mapping, Tuple, Union

import numpy as np


class SafetensorsError(ValueError):
    """A safetensors file (or what is to be written) is malformed; the message says what is wrong."""


ITEM_BYTES = {"F32": 4, "U32": 4, "I32": 4, "U8": 1}
NUMPY_DTYPES = {"F32": np.dtype("<f4"), "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "U8": np.dtype("u1")}
#: Read but never written: F16 (the model zoo's storage) is widened to F32 on load, exactly.
READ_ONLY_BYTES = {"F16": 2}
FILE_BYTES = {**ITEM_BYTES, **READ_ONLY_BYTES}
OTHER_DTYPES = ["F64", "BF16", "I64", "I16", "I8", "U64", "U16", "BOOL", "F8_E4M3", "F8_E5M2",
                "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"]
MAX_HEADER_BYTES = 100_000_000
SUPPORTED = ", ".join(FILE_BYTES)


def _dtype_of_array(a: np.ndarray) -> str:
    for name, dt in NUMPY_DTYPES.items():
        if a.dtype == dt or (a.dtype.kind == dt.kind and a.dtype.itemsize == dt.itemsize):
            return name
    raise SafetensorsError(f"safetensors: numpy dtype {a.dtype} has no supported safetensors dtype (supported: {SUPPORTED})")


# ---- JSON as JavaScript writes it ---------------------------------------------------------------

def js_number(x: Union[int, float]) -> str:
    """Formats a number as JavaScript's Number.prototype.toString (and JSON.stringify) does."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        x_float = float(x)
        if abs(x) < 10**21 and float(int(x_float)) == x_float and int(x_float) == x:
            return str(x)
        x = x_float
    if not math.isfinite(x):
        return "null"  # what JSON.stringify writes for NaN and +-Infinity
    if x == 0:
        return "0"  # -0 too
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digits that round-trip, as ECMAScript's Number::toString requires.
    t = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(str(d) for d in t.digits)
    k = len(digits)
    n = t.exponent + k  # value = 0.digits * 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def js_json(value) -> str:
    """JSON.stringify(value) for JSON-like Python values (dict order kept)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_json(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = list(value.keys())
        # JavaScript orders integer-like keys first, ascending, then the others in insertion order.
        ints = sorted((k for k in keys if _array_index(k)), key=int)
        rest = [k for k in keys if not _array_index(k)]
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + js_json(value[k]) for k in ints + rest
                              if value[k] is not _UNDEFINED) + "}"
    if isinstance(value, np.generic):
        return js_json(value.item())
    raise TypeError(f"js_json: cannot encode {type(value).__name__}")


_UNDEFINED = object()


def _array_index(k) -> bool:
    return isinstance(k, str) and k.isdigit() and (k == "0" or not k.startswith("0")) and int(k) < 2**32 - 1


# ---- encode / decode -------------------------------------------------------------------------------

Tensors = Mapping[str, np.ndarray]


def encode(tensors: Tensors, metadata: Mapping[str, str] | None = None) -> bytes:
    """Encodes tensors (in the mapping's order) and string metadata; the same bytes as encodeSafetensors."""
    if sys.byteorder != "little":
        raise SafetensorsError("safetensors: this host is big-endian; only little-endian hosts are supported")
    metadata = dict(metadata or {})
    header: Dict[str, object] = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise SafetensorsError(f"safetensors: metadata '{key}' is a {type(value).__name__}; metadata values must be strings")
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, a in tensors.items():
        if name == "__metadata__":
            raise SafetensorsError("safetensors: '__metadata__' cannot be a tensor name")
        a = np.asarray(a)
        dtype = _dtype_of_array(a)
        data = np.ascontiguousarray(a, dtype=NUMPY_DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": [int(d) for d in a.shape], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = js_json(header).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def decode(data: bytes, name: str = "safetensors file", allow_unclaimed: bool = False, unclaimed: list | None = None
           ) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Decodes and validates; returns ({name: array} in file order, metadata). Raises SafetensorsError
    with the same messages as decodeSafetensors. With allow_unclaimed, gaps and trailing bytes are
    appended to ``unclaimed`` as (begin, end) instead of failing (decodeSafetensors' allowUnclaimed)."""
    if unclaimed is None:
        unclaimed = []
    if sys.byteorder != "little":
        raise SafetensorsError("safetensors: this host is big-endian; only little-endian hosts are supported")

    def fail(message: str):
        raise SafetensorsError(f"{name}: {message}")

    data = bytes(data)
    if len(data) < 8:
        fail(f"truncated: {len(data)} bytes, the 8-byte header length alone is missing")
    declared = struct.unpack_from("<Q", data, 0)[0]
    if declared > len(data) - 8:
        fail(f"header length {declared} runs past the end of the file ({len(data) - 8} bytes after the length field); "
             "truncated or not a safetensors file")
    header_length = declared
    if header_length > MAX_HEADER_BYTES:
        fail(f"header length {header_length} exceeds the {MAX_HEADER_BYTES}-byte limit")
    if header_length < 2:
        fail(f"header length {header_length} is too small for a JSON object")
    try:
        text = data[8:8 + header_length].decode("utf-8")
    except UnicodeDecodeError:
        fail("header is not valid UTF-8")
    try:
        header = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"header is not valid JSON ({error})")
    if not isinstance(header, dict):
        fail("header JSON is not an object")
    data_start = 8 + header_length
    data_length = len(data) - data_start
    metadata: Dict[str, str] = {}
    parsed = []

    def is_count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53 - 1

    for key, value in header.items():
        if key == "__metadata__":
            if not isinstance(value, dict):
                fail("__metadata__ is not an object of strings")
            for k, v in value.items():
                if not isinstance(v, str):
                    kind = "null" if v is None else {bool: "boolean", int: "number", float: "number", list: "object",
                                                     dict: "object"}.get(type(v), type(v).__name__)
                    fail(f"__metadata__ '{k}' is a {kind}; metadata values must be strings")
                metadata[k] = v
            continue
        if not isinstance(value, dict):
            fail(f"tensor '{key}': entry is not an object")
        dtype = value.get("dtype")
        if dtype not in FILE_BYTES:
            if isinstance(dtype, str) and dtype in OTHER_DTYPES:
                fail(f"tensor '{key}': dtype {dtype} is valid safetensors but not supported here (supported: {SUPPORTED})")
            fail(f"tensor '{key}': unknown dtype {json.dumps(dtype)} (supported: {SUPPORTED})")
        shape = value.get("shape")
        if not isinstance(shape, list) or not all(is_count(d) for d in shape):
            fail(f"tensor '{key}': shape {js_json(shape) if shape is not None else 'undefined'} is not a list of non-negative integers")
        offsets = value.get("data_offsets")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_count(o) for o in offsets):
            fail(f"tensor '{key}': data_offsets {js_json(offsets) if offsets is not None else 'undefined'} is not a pair of non-negative integers")
        begin, end = offsets
        if end < begin:
            fail(f"tensor '{key}': data_offsets [{begin}, {end}] end before they begin")
        if end > data_length:
            fail(f"tensor '{key}': data_offsets [{begin}, {end}] run past the end of the data ({data_length} bytes); "
                 "the file is truncated or corrupt")
        expected = int(np.prod(shape, dtype=np.int64)) * FILE_BYTES[dtype] if shape else FILE_BYTES[dtype]
        if end - begin != expected:
            fail(f"tensor '{key}': shape [{', '.join(str(d) for d in shape)}] of {dtype} needs {expected} bytes "
                 f"but data_offsets [{begin}, {end}] hold {end - begin}")
        parsed.append((key, dtype, shape, begin, end))
    parsed.sort(key=lambda t: (t[3], t[4]))
    cursor = 0
    for i, (key, _dtype, _shape, begin, end) in enumerate(parsed):
        if begin < cursor:
            prev = parsed[i - 1]
            fail(f"tensor '{key}': data_offsets [{begin}, {end}] overlap tensor '{prev[0]}' [{prev[3]}, {prev[4]}]")
        if begin > cursor:
            if not allow_unclaimed:
                fail(f"tensor '{key}' starts at {begin}, leaving a gap of {begin - cursor} unused bytes before it")
            unclaimed.append((cursor, begin))
        cursor = end
    if cursor != data_length:
        if not allow_unclaimed:
            fail(f"{data_length - cursor} bytes after the last tensor are not described by the header "
                 "(trailing data or a corrupt header)")
        unclaimed.append((cursor, data_length))
    tensors: Dict[str, np.ndarray] = {}
    for key, dtype, shape, begin, end in parsed:
        if dtype == "F16":
            a = np.frombuffer(data, dtype=np.dtype("<f2"), count=(end - begin) // 2, offset=data_start + begin).astype(np.float32)
        else:
            a = np.frombuffer(data, dtype=NUMPY_DTYPES[dtype], count=(end - begin) // ITEM_BYTES[dtype],
                              offset=data_start + begin).copy()
        tensors[key] = a.reshape(shape)
    return tensors, metadata
