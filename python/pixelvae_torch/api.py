"""The protocol every PyTorch twin model implements (MNIST family in mnist.py, hierarchical in hier.py).

The trainer, evaluator, CLI and checkpoint code only talk to a model through this class, so both
families share them. A model is a ``torch.nn.Module`` built from the same config dict the TypeScript
model takes (``src/models/config.ts`` / ``src/models/hierarchical/config.ts``: the preset *without*
its ``mnist-``/``hier-`` prefix, every size, and ``seed`` for initialisation).

Randomness: every method that draws takes either explicit noise (the equivalence tests pass the
TypeScript engine's draws) or a ``torch.Generator``; nothing uses the global RNG.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

Tensor = torch.Tensor


class TwinModel(torch.nn.Module):
    """Base class of the twin models. Subclasses set the attributes and implement the methods below."""

    #: Checkpoint preset string, with its family prefix, e.g. "mnist-gated-pixelvae-cond", "hier-tiny".
    preset: str
    #: The TypeScript model config (preset without prefix, sizes, seed), JSON-ready.
    config: dict
    #: "mnist" or "colour" (the checkpoint's data.dataset).
    dataset: str
    #: Image shape [C, H, W] and whether pixels are binary (MNIST) or 0..255 sub-pixels (colour).
    image_shape: Tuple[int, int, int]
    #: Gradient clipping of the family's trainer: ("value", 1.0) for MNIST (element-wise),
    #: ("global_norm", 5.0) for the hierarchical model.
    clip: Tuple[str, float] = ("value", 1.0)

    # ---- checkpoint layout --------------------------------------------------------------------

    def checkpoint_tensors(self) -> "OrderedDict[str, Tensor]":
        """Every tensor of the checkpoint, under its checkpoint name, in the order the TypeScript writes
        them: the trainable parameters in ParamSet order (the ``torch.nn.Parameter`` objects
        themselves), then non-trainable state (batch-norm running statistics as ``buffer/<name>``,
        registered buffers). Loading copies into these tensors in place, so they must be the module's
        own storage, shaped exactly as in the TypeScript checkpoint (convolution weights may need a
        view/permute: then override load_state/export_state instead)."""
        raise NotImplementedError

    def trainable_names(self) -> List[str]:
        """Checkpoint names of the trainable parameters, in ParamSet order (Adam's moments are saved as
        ``optim/m/<name>`` and ``optim/v/<name>`` in this order). Default: the Parameters of
        checkpoint_tensors()."""
        return [n for n, t in self.checkpoint_tensors().items() if isinstance(t, torch.nn.Parameter)]

    def sizes(self) -> dict:
        """The checkpoint config's "sizes": the model config without preset and seed, plus initSeed."""
        c = dict(self.config)
        c.pop("preset", None)
        seed = c.pop("seed", 1)
        c["initSeed"] = seed
        return c

    # ---- the model ----------------------------------------------------------------------------

    def losses(self, x: Tensor, step: Optional[int], noise=None, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """The training objective on a batch ``x`` (MNIST: float {0,1} [B,1,S,S]; colour: uint8 or
        long 0..255 [B,3,S,S]). ``step`` selects the warm-up weights of that training step
        (MNIST: KL weight min(1, step/klWarmupSteps); hierarchical: schedule(config, step));
        ``step=None`` means evaluation weights (KL weights 1, no sigma floor). ``noise`` is the
        reparameterisation noise (MNIST: N(0,1) [B, Z]; hierarchical: {"eps1", "eps2"}); without it,
        it is drawn from ``generator``.

        Returns a dict with at least:
          'loss'     scalar, what the TypeScript trainer minimises (autograd attached);
          'recon'    per-image reconstruction nats [B] (hier: per-dimension mean -> see below);
          'kl'       per-image KL nats [B] (zeros without a latent; hier: kl1 + kl2);
          'neg_elbo' per-image recon + kl [B].
        The hierarchical model reports everything in nats per dimension, as its TypeScript terms
        do, and adds 'kl1', 'kl2'."""
        raise NotImplementedError

    def kl_weight(self, step: int) -> float:
        """MNIST: min(1, step / klWarmupSteps) (1 with no warm-up). Informational for the hierarchical model."""
        return 1.0

    def is_nll(self, x: Tensor, k: int, noise: Optional[Tensor] = None, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """Importance-sampled NLL with k samples per image, as MnistModel.importanceNll: per-image
        'nll', 'neg_elbo', 'kl' (and 'recon' = neg_elbo - kl), no grad needed. ``noise`` is N(0,1)
        [k*B, Z] (sample-major, as the TypeScript). Models without a latent return the exact NLL
        for all three. The hierarchical model may raise NotImplementedError (no IS in TypeScript)."""
        raise NotImplementedError

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """n images drawn from the model: MNIST float {0,1} [n,1,S,S]; colour uint8 [n,3,S,S]."""
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Posterior (mean, log sigma) of the top latent [B, Z] (k-NN uses the means)."""
        raise NotImplementedError

    def before_eval(self, train_batches) -> None:
        """Hook run before evaluation or sampling: the hierarchical model re-estimates batch-norm
        statistics from ``train_batches`` (an iterable of batches). MNIST: nothing."""


# ---- checkpoint state <-> model ------------------------------------------------------------------

def expected_tensors(model: TwinModel):
    """(name, shape, dtype) of every checkpoint tensor, for checkpoint.check_compatible."""
    out = []
    for name, t in model.checkpoint_tensors().items():
        out.append((name, tuple(t.shape), _safe_dtype(t)))
    return out


def expected_optim(model: TwinModel):
    params = model.checkpoint_tensors()
    names = model.trainable_names()
    return [(f"m/{n}", tuple(params[n].shape), "F32") for n in names] + [(f"v/{n}", tuple(params[n].shape), "F32") for n in names]


def _safe_dtype(t: Tensor) -> str:
    if t.dtype == torch.float32:
        return "F32"
    if t.dtype == torch.int32:
        return "I32"
    if t.dtype == torch.uint8:
        return "U8"
    raise TypeError(f"checkpoint tensor of dtype {t.dtype} has no safetensors dtype here")
