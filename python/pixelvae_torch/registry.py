"""Which module builds which preset: "mnist-*" -> mnist.py, "hier-*" -> hier.py.

Each family module provides
  PRESETS: tuple of preset names without the prefix;
  make_config(preset, overrides: dict) -> dict: the full TypeScript config (defaults of mnistConfig /
      hierConfig filled in, validated; ValueError with the TypeScript's message otherwise);
  build(config: dict) -> TwinModel.
The modules are imported lazily so one family's import problems never break the other.
"""

from __future__ import annotations

import importlib
from typing import Tuple

from .api import TwinModel
from .checkpoint import CheckpointError

FAMILIES = {"mnist-": "mnist", "hier-": "hier"}


def split_preset(preset: str) -> Tuple[str, str]:
    """'mnist-pixelcnn' -> ('mnist', 'pixelcnn'). ValueError naming the known presets otherwise."""
    for prefix, module in FAMILIES.items():
        if preset.startswith(prefix):
            name = preset[len(prefix):]
            mod = family(module)
            if name in mod.PRESETS:
                return module, name
    raise ValueError(f"unknown preset '{preset}' (one of {', '.join(all_presets())})")


def family(module: str):
    return importlib.import_module(f".{module}", __package__)


def all_presets():
    out = []
    for prefix, module in FAMILIES.items():
        try:
            out += [prefix + p for p in family(module).PRESETS]
        except ImportError:
            pass
    return out


def build_model(preset: str, overrides: dict | None = None) -> TwinModel:
    """A fresh model of a prefixed preset ("mnist-gated-pixelvae-cond", "hier-tiny") with overrides
    of its config (sizes, "seed")."""
    module, name = split_preset(preset)
    mod = family(module)
    return mod.build(mod.make_config(name, dict(overrides or {})))


def config_from_checkpoint(ckpt_config: dict) -> Tuple[str, dict]:
    """(prefixed preset, model config overrides) of a checkpoint's config: its sizes, with initSeed as
    the init seed (1 when absent, as the TypeScript). CheckpointError when it is no model we have."""
    preset = ckpt_config["preset"]
    try:
        split_preset(preset)
    except ValueError:
        raise CheckpointError(f"checkpoint preset '{preset}' is not a model this package has (one of {', '.join(all_presets())})") from None
    sizes = dict(ckpt_config["sizes"])
    init_seed = sizes.pop("initSeed", 1)
    sizes["seed"] = init_seed if isinstance(init_seed, (int, float)) else 1
    return preset, sizes


def model_from_checkpoint_config(ckpt_config: dict) -> TwinModel:
    preset, overrides = config_from_checkpoint(ckpt_config)
    try:
        return build_model(preset, overrides)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"checkpoint sizes are not a valid model: {error}") from None
