"""Helpers for the equivalence tests (test/twin-mnist.test.ts): the twin's side of a comparison with
the WebGPU engine. Not used by training.

    python -m pixelvae_torch.testing mnist-equivalence CASE_DIR [CASE_DIR ...]

Each CASE_DIR holds what the TypeScript test wrote:
  checkpoint.safetensors  a model checkpoint (parameters, config)
  inputs.safetensors      x [B,1,S,S]; noise [B,Z] and isNoise [k*B,Z] (latent models); sampleZ [B,Z]
                          (latent models) and sampleUniforms [B,1,S,S] when sampling is compared;
                          init/<name> (optional): the TypeScript model's initial parameters for the
                          checkpoint's config and seed; metadata {"step", "k"}
and gets twin.safetensors with the twin's logits, mu, logSigma, loss terms, IS-NLL terms, gradients
of the loss ("grad/<name>"), and samples; its metadata holds the KL weight used and the largest
difference between the twin's own initialisation and init/<name>. One JSON line per case on stdout.

    python -m pixelvae_torch.testing init FILE [FILE ...]

Each FILE holds a TypeScript model's initial parameters in creation order, with metadata 'config' (the
model config JSON) and 'family' ('mnist' or 'hier'); prints whether the twin's fresh model of that
config has the same names in the same order and the largest absolute difference of the values.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict

import numpy as np
import torch

from . import safetensors as st
from .api import TwinModel
from .registry import build_model
from .train import load_checkpoint_model


def load_model(path: str) -> TwinModel:
    """A model built from a checkpoint's config with its parameters loaded (the trainer's loader, which
    refuses a mismatch before copying anything)."""
    return load_checkpoint_model(path)[0]


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def mnist_case(case: str) -> Dict[str, object]:
    started = time.time()
    with open(os.path.join(case, 'inputs.safetensors'), 'rb') as f:
        inputs, meta = st.decode(f.read(), 'inputs.safetensors')
    step = int(meta['step'])
    k = int(meta['k'])
    model = load_model(os.path.join(case, 'checkpoint.safetensors'))
    t = {name: torch.from_numpy(np.array(a, dtype=np.float32)) for name, a in inputs.items()}
    x = t['x']
    out: Dict[str, np.ndarray] = {}
    summary: Dict[str, object] = {'case': os.path.basename(case), 'preset': model.preset}

    # Initialisation: the same seed must give the TypeScript model's initial values.
    init = {name[len('init/'):]: a for name, a in inputs.items() if name.startswith('init/')}
    if init:
        fresh = type(model)(model.config)
        own = fresh.checkpoint_tensors()
        if list(own) != list(init):
            raise SystemExit(f'initial parameter names/order differ:\n twin {list(own)}\n ts   {list(init)}')
        summary['initMaxAbs'] = max(float(np.max(np.abs(_np(own[n]) - init[n]))) if init[n].size else 0.0 for n in own)

    # Logits from z = mu + noise * sigma, as MnistModel.loss forms z.
    with torch.no_grad():
        z = None
        if model.has_latent:
            mu, log_sigma = model.encode(x)
            z = mu + t['noise'] * torch.exp(log_sigma)
            out['mu'], out['logSigma'] = _np(mu), _np(log_sigma)
        out['logits'] = _np(model.decode(x, z))

    # The training loss at `step` and its gradients.
    weight = model.kl_weight(step)
    params = model.checkpoint_tensors()
    for p in params.values():
        p.grad = None
    terms = model.loss(x, t.get('noise'), weight)
    terms['loss'].backward()
    out['loss'] = _np(terms['loss'].reshape(1))
    out['reconstruction'] = _np(terms['reconstruction'])
    out['kl'] = _np(terms['kl'])
    for name, p in params.items():
        out[f'grad/{name}'] = _np(p.grad) if p.grad is not None else np.zeros(tuple(p.shape), np.float32)
    # The protocol's entry point must agree with loss() (same weight, same noise).
    via = model.losses(x, step, noise=t.get('noise'))
    summary['lossesAgree'] = bool(torch.equal(via['loss'].detach(), terms['loss'].detach()))

    with torch.no_grad():
        r = model.is_nll(x, k, noise=t.get('isNoise'))
    out['isNll'], out['isNegElbo'], out['isKl'] = _np(r['nll']), _np(r['neg_elbo']), _np(r['kl'])
    out['isNegElboSameSamples'] = _np(r['neg_elbo_same_samples'])

    if 'sampleUniforms' in t:
        images, probs = model.sample_with(t.get('sampleZ') if model.has_latent else None, t['sampleUniforms'])
        out['sampleImages'], out['sampleProbs'] = _np(images), _np(probs)

    summary['klWeight'] = weight
    summary['seconds'] = round(time.time() - started, 3)
    metadata = {'summary': json.dumps(summary)}
    with open(os.path.join(case, 'twin.safetensors'), 'wb') as f:
        f.write(st.encode(out, metadata))
    return summary


def init_case(path: str) -> Dict[str, object]:
    """Compares the twin's fresh model with a TypeScript model's initial parameters: a safetensors file
    of them (in ParamSet order) whose metadata 'config' is the TypeScript model config."""
    with open(path, 'rb') as f:
        tensors, meta = st.decode(f.read(), os.path.basename(path))
    config = json.loads(meta['config'])
    preset = config['preset']
    model = build_model(PREFIXES[meta.get('family', 'mnist')] + preset, {k: v for k, v in config.items() if k != 'preset'})
    own = model.checkpoint_tensors()
    summary: Dict[str, object] = {'file': os.path.basename(path), 'preset': model.preset, 'tensors': len(own),
                                  'sameNamesInOrder': list(own) == list(tensors)}
    if summary['sameNamesInOrder']:
        summary['maxAbs'] = max(float(np.max(np.abs(_np(own[n]) - tensors[n]))) if tensors[n].size else 0.0 for n in own)
        summary['values'] = int(sum(a.size for a in tensors.values()))
    return summary


PREFIXES = {'mnist': 'mnist-', 'hier': 'hier-'}
USAGE = """usage: python -m pixelvae_torch.testing mnist-equivalence CASE_DIR [CASE_DIR ...]
       python -m pixelvae_torch.testing init FILE [FILE ...]"""


def main(argv) -> int:
    if len(argv) < 2 or argv[0] not in ('mnist-equivalence', 'init'):
        print(USAGE, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    run = mnist_case if argv[0] == 'mnist-equivalence' else init_case
    for case in argv[1:]:
        print(json.dumps(run(case)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
