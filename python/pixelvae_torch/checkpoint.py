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


def check_finite(tensors: Mapping[str, np.ndarray], where: str, kind: str = "tensor") -> None:
    """Refuses NaN or infinite values, naming the tensor, so a diverged run never poisons another."""
    for name, a in tensors.items():
        if a.dtype.kind != "f":
            continue
        bad = ~np.isfinite(a)
        if bad.any():
            index = int(np.flatnonzero(bad.reshape(-1))[0])
            value = a.reshape(-1)[index]
            text = "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            raise CheckpointError(
                f"{where}: {kind} '{name}' has {int(bad.sum())} non-finite value(s) (first: {text} at element {index}); "
                "the run that wrote it had diverged, so nothing was loaded")


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
    """decodeCheckpoint: validated arrays and config; CheckpointError for a corrupt file, one not ours,
    a bad config, or (with finite=True) NaN/infinite values."""
    try:
        tensors, metadata = st.decode(data, name)
    except st.SafetensorsError as error:
        raise CheckpointError(f"{error} (not a valid checkpoint file)") from None
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
    if finite:
        check_finite(params, name)
        check_finite(optim, name, "optimizer tensor")
    return Checkpoint(config, params, optim)


def read_checkpoint(path: str, finite: bool = True) -> Checkpoint:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    return decode_checkpoint(data, os.path.basename(path), finite)


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
    if problems:
        raise CheckpointError(
            f"checkpoint (preset '{checkpoint.config['preset']}', step {checkpoint.config['step']}) does not fit this model; "
            "nothing was loaded:\n" + "\n".join(f"  - {p}" for p in problems))
