"""PixelVAE Lab checkpoints, as src/io/checkpoint.ts reads and writes them.

One safetensors file: the model's tensors under their own names (in the model's order), the
optimizer state under ``optim/`` (Adam: ``optim/m/<name>``, ``optim/v/<name>``), and the run's JSON
config in the metadata key ``pixelvae_config``. Reading is two-phase like the TypeScript: decode and
validate the bytes into numpy arrays, check them against the model (one error listing every
difference), and only then copy them into torch tensors, so a wrong file never changes a model.
Writing goes to a temporary file that is renamed over the target, so a killed run leaves the last
complete checkpoint readable.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import safetensors as st
from .safetensors import js_json

CONFIG_KEY = "pixelvae_config"
OPTIM_PREFIX = "optim/"
CHECKPOINT_FORMAT = "pixelvae-lab-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is corrupt, not ours, or does not fit the model; the message says what to do."""


@dataclass
class Checkpoint:
    config: dict
    #: Model tensors by name, in file order.
    params: Dict[str, np.ndarray] = field(default_factory=dict)
    #: Optimizer state by name, without the "optim/" prefix.
    optim: Dict[str, np.ndarray] = field(default_factory=dict)
    #: Byte ranges of tensor data no header entry claims (a deleted entry); check_compatible refuses them.
    unclaimed: List[Tuple[int, int]] = field(default_factory=list)


def _js(value) -> str:
    """How a JavaScript template literal shows JSON.stringify(value) (undefined for a missing key)."""
    return "undefined" if value is _MISSING else js_json(value)


_MISSING = object()


def _is_object(v) -> bool:
    return isinstance(v, dict)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_count(v) -> bool:
    return _is_number(v) and float(v).is_integer() and v >= 0


def validate_config(value, where: str = "checkpoint config") -> dict:
    """validateConfig of src/io/checkpoint.ts: the same checks and messages."""
    def fail(message: str):
        raise CheckpointError(f"{where}: {message}")

    if not _is_object(value):
        fail("is not a JSON object")
    c = value
    g = lambda d, k: d.get(k, _MISSING)  # noqa: E731
    if g(c, "format") != CHECKPOINT_FORMAT:
        fail(f"format is {_js(g(c, 'format'))}, expected \"{CHECKPOINT_FORMAT}\" (not a PixelVAE Lab checkpoint?)")
    version = g(c, "version")
    if not (_is_number(version) and float(version).is_integer()):
        fail(f"version {_js(version)} is not an integer")
    if version > CHECKPOINT_VERSION:
        fail(f"version {st.js_number(version)} was written by a newer PixelVAE Lab (this one reads up to version {CHECKPOINT_VERSION})")
    if not isinstance(g(c, "preset"), str) or c["preset"] == "":
        fail("preset is missing or not a string")
    if not _is_object(g(c, "sizes")):
        fail("sizes is missing or not an object")
    if not _is_count(g(c, "step")):
        fail(f"step {_js(g(c, 'step'))} is not a non-negative integer")
    if not _is_object(g(c, "optimizer")):
        fail("optimizer is missing or not an object")
    o = c["optimizer"]
    if not isinstance(g(o, "name"), str):
        fail("optimizer.name is missing or not a string")
    if not _is_count(g(o, "step")):
        fail(f"optimizer.step {_js(g(o, 'step'))} is not a non-negative integer")
    if not _is_object(g(c, "data")):
        fail("data is missing or not an object")
    d = c["data"]
    if not isinstance(g(d, "dataset"), str):
        fail("data.dataset is missing or not a string")
    if not _is_object(g(d, "split")) or not all(_is_count(v) for v in d["split"].values()):
        fail("data.split is not an object of counts")
    seed = g(c, "seed")
    if not (_is_number(seed) and math.isfinite(seed)):
        fail(f"seed {_js(seed)} is not a number")
    if "extra" in c and not _is_object(c["extra"]):
        fail("extra is not an object")
    return c


def complete_config(config: dict) -> dict:
    """{...config, format, version} as JavaScript spreads it: existing keys keep their place."""
    out = dict(config)
    out["format"] = CHECKPOINT_FORMAT
    out["version"] = CHECKPOINT_VERSION
    if out.get("extra", 0) is None:
        del out["extra"]  # JSON.stringify drops an undefined extra
    return validate_config(out, "encodeCheckpoint")


def config_json(config: dict) -> str:
    """The config as the separate, human-readable JSON file (JSON.stringify(config, null, 2) + newline)."""
    return json.dumps(complete_config(config), indent=2, ensure_ascii=False) + "\n"


class NonFiniteCheckpointError(CheckpointError):
    """A checkpoint refused because some of its values are NaN or infinite (``tensors`` lists them)."""

    def __init__(self, message: str, tensors: list):
        super().__init__(message)
        self.tensors = tensors


def non_finite_tensors(entries) -> list:
    """(key, shape, count, size, first index, first value) of every float tensor holding NaN or Inf."""
    out = []
    for key, a in entries:
        if a.dtype.kind != "f":
            continue
        flat = a.reshape(-1)
        bad = ~np.isfinite(flat)
        count = int(bad.sum())
        if count:
            first = int(np.flatnonzero(bad)[0])
            out.append((key, list(a.shape), count, flat.size, first, float(flat[first])))
    return out


def _value_text(v: float) -> str:
    return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")


def _file_entries(checkpoint: "Checkpoint"):
    return list(checkpoint.params.items()) + [(OPTIM_PREFIX + k, a) for k, a in checkpoint.optim.items()]


def assert_finite(checkpoint: "Checkpoint", name: str = "checkpoint") -> None:
    """assertFinite of src/io/checkpoint.ts: names every tensor holding NaN or Inf, with the same message."""
    entries = _file_entries(checkpoint)
    bad = non_finite_tensors(entries)
    if not bad:
        return
    lines = [f"  - '{key}' {_shape_text(shape)}: {count} of {size} values, first at index {first} ({_value_text(value)})"
             for key, shape, count, size, first, value in bad]
    raise NonFiniteCheckpointError(
        f"{name}: non-finite values (NaN or Inf) in {len(bad)} of {len(entries)} tensors; nothing was loaded:\n" + "\n".join(lines) + "\n"
        "The run that wrote this file had diverged, or the file is damaged. Open an earlier checkpoint.", bad)


def _json_instead_of_checkpoint(data: bytes, name: str) -> Optional[str]:
    """jsonInsteadOfCheckpoint: the message for the config JSON (or any JSON) opened as a checkpoint."""
    start = 3 if data[:3] == b"\xef\xbb\xbf" else 0
    while start < len(data) and data[start] in b" \t\n\r":
        start += 1
    if start >= len(data) or data[start] not in b"{[" or len(data) > 50_000_000:
        return None
    try:
        value = json.loads(data[start:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(value, dict) and value.get("format") == CHECKPOINT_FORMAT:
        preset = value["preset"] if isinstance(value.get("preset"), str) else "?"
        step = js_json(value["step"]) if _is_number(value.get("step")) else "?"
        return (f"{name} is the config JSON saved beside a checkpoint (preset '{preset}', step {step}), not a checkpoint: "
                "open the .safetensors file downloaded with it.")
    return f"{name} is a JSON text file, not a checkpoint: open a .safetensors checkpoint file."


def encode_checkpoint(config: dict, params: Mapping[str, np.ndarray], optim: Optional[Mapping[str, np.ndarray]] = None) -> bytes:
    """encodeCheckpoint: parameters (in order), then optimizer state as "optim/<name>", config in the metadata."""
    config = complete_config(config)
    tensors: Dict[str, np.ndarray] = {}
    for name, a in params.items():
        if name.startswith(OPTIM_PREFIX):
            raise CheckpointError(f"encodeCheckpoint: parameter '{name}' uses the reserved prefix '{OPTIM_PREFIX}'")
        tensors[name] = a
    for name, a in (optim or {}).items():
        tensors[OPTIM_PREFIX + name] = a
    try:
        return st.encode(tensors, {CONFIG_KEY: js_json(config)})
    except st.SafetensorsError as error:
        raise CheckpointError(f"encodeCheckpoint: {error}") from None


def decode_checkpoint(data: bytes, name: str = "checkpoint", finite: bool = True) -> Checkpoint:
    """decodeCheckpoint: validated arrays and config; CheckpointError for a corrupt file, one not ours
    (or the config JSON instead of the checkpoint), a bad config, or (with finite=True)
    NonFiniteCheckpointError for NaN/infinite values."""
    unclaimed: List[Tuple[int, int]] = []
    try:
        tensors, metadata = st.decode(data, name, allow_unclaimed=True, unclaimed=unclaimed)
    except st.SafetensorsError as error:
        message = _json_instead_of_checkpoint(bytes(data), name)
        raise CheckpointError(message or f"{error} (not a valid checkpoint file)") from None
    text = metadata.get(CONFIG_KEY)
    if text is None:
        keys = ", ".join(metadata.keys()) or "none"
        raise CheckpointError(
            f"{name}: not a PixelVAE Lab checkpoint: its safetensors metadata has no '{CONFIG_KEY}' "
            f"(keys: {keys}); it may be weights from another tool")
    where = f"{name}: '{CONFIG_KEY}'"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{where}: not valid JSON ({error})") from None
    config = validate_config(value, where)
    params: Dict[str, np.ndarray] = {}
    optim: Dict[str, np.ndarray] = {}
    for key, a in tensors.items():
        if key.startswith(OPTIM_PREFIX):
            optim[key[len(OPTIM_PREFIX):]] = a
        else:
            params[key] = a
    checkpoint = Checkpoint(config, params, optim, unclaimed)
    if finite:
        assert_finite(checkpoint, name)
    return checkpoint


def read_checkpoint(path: str, finite: bool = True) -> Checkpoint:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    return decode_checkpoint(data, path, finite)


def write_atomic(path: str, data: bytes) -> None:
    """Writes to a temporary file in the same folder, then renames it over `path`: a reader (or a
    crash) sees the old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


ExpectedTensor = Tuple[str, Sequence[int], str]  # (name, shape, dtype "F32"/"U32"/...)


def _compare(kind: str, have: Mapping[str, np.ndarray], expected: Iterable[ExpectedTensor], problems: List[str]) -> None:
    wanted = set()
    for name, shape, dtype in expected:
        wanted.add(name)
        t = have.get(name)
        if t is None:
            problems.append(f"missing {kind} '{name}' {_shape_text(shape)}")
            continue
        if tuple(t.shape) != tuple(int(d) for d in shape):
            problems.append(f"shape mismatch for {kind} '{name}': checkpoint {_shape_text(t.shape)}, model {_shape_text(shape)}")
        have_dtype = st._dtype_of_array(t)
        if have_dtype != dtype:
            problems.append(f"dtype mismatch for {kind} '{name}': checkpoint {have_dtype}, model {dtype}")
    for name, t in have.items():
        if name not in wanted:
            problems.append(f"unexpected {kind} '{name}' {_shape_text(t.shape)} (the model has no such {kind})")


def check_compatible(checkpoint: Checkpoint, expected: Sequence[ExpectedTensor], preset: str,
                     optim: Optional[Sequence[ExpectedTensor]] = None) -> None:
    """checkCompatible: one CheckpointError listing every difference; call before loading anything."""
    problems: List[str] = []
    if checkpoint.config["preset"] != preset:
        problems.append(f"other preset: checkpoint is '{checkpoint.config['preset']}', model is '{preset}'")
    _compare("tensor", checkpoint.params, expected, problems)
    if optim is not None:
        _compare("optimizer tensor", checkpoint.optim, optim, problems)
    for begin, end in checkpoint.unclaimed:
        problems.append(f"{end - begin} bytes of tensor data at [{begin}, {end}) belong to no tensor in the file's header")
    if problems:
        raise CheckpointError(
            f"checkpoint (preset '{checkpoint.config['preset']}', step {checkpoint.config['step']}) does not fit this model; "
            "nothing was loaded:\n" + "\n".join(f"  - {p}" for p in problems))
