"""Per-image evaluation for the model zoo (scripts/zoo.mjs), on the PyTorch twin's models.

`python -m pixelvae_torch eval` prints means only; the zoo also needs each figure's standard error
(the spread over images / sqrt(n)), so this draws exactly what `eval` draws (MNIST: noise
Philox(seed, [batch, 7]); hierarchical: batch-norm re-estimation over --bn-batches training batches
of EpochSampler(seed), noise posteriorNoise(seed, [batch, 9])) and keeps every image's value. Its
means equal `eval`'s for the same flags (zoo.mjs checks that on a small sample).

usage: PYTHONPATH=python python3 scripts/zoo-eval.py --checkpoint F [--k K] [--limit N] [--batch B]
       [--seed S] [--device cpu|cuda] [--data PATH --bn-batches B] [--per-image FILE]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

from pixelvae_torch import data as D
from pixelvae_torch import train as T


def stats(values: np.ndarray) -> dict:
    n = len(values)
    sd = float(values.std(ddof=1)) if n > 1 else math.inf
    return {"mean": float(values.mean()), "sd": sd, "stderr": sd / math.sqrt(n), "n": n}


@torch.no_grad()
def mnist(model, a) -> dict:
    data = D.load_mnist_split(model.config["imageSize"], None, D.DEFAULT_BINARIZATION_SEED)
    bits = data.test.images
    count = min(a.limit or len(bits), len(bits))
    nll, elbo, kl = [], [], []
    model.eval()
    t0 = time.perf_counter()
    for b in range(math.ceil(count / a.batch)):
        start = b * a.batch
        n = min(a.batch, count - start)
        x = torch.from_numpy(bits[start:start + n][:, None].astype(np.float32)).to(a.device)
        noise = None
        if model.has_latent:
            noise = torch.from_numpy(D.random_normal((a.k * n, model.latent_dim), a.seed, [b, T.MNIST_EVAL_STREAM])).to(a.device)
        # The noise is drawn per batch (as `eval` draws it); the k * n decoder passes run in chunks of
        # --chunk images, which keeps the activations in cache (several times faster on a CPU).
        # Each image's value depends only on its own noise, so the chunking changes no number.
        eps = noise.reshape(a.k, n, -1) if noise is not None else None
        for c0 in range(0, n, a.chunk):
            c1 = min(n, c0 + a.chunk)
            sub = eps[:, c0:c1].reshape(-1, eps.shape[2]) if eps is not None else None
            r = model.is_nll(x[c0:c1], a.k, sub)
            nll.append(r["nll"].double().cpu().numpy())
            elbo.append(r["neg_elbo"].double().cpu().numpy())
            kl.append(r["kl"].double().cpu().numpy())
        sys.stderr.write(f"zoo-eval: {start + n}/{count} images, {(start + n) / (time.perf_counter() - t0):.1f} images/s\n")
    nll, elbo, kl = np.concatenate(nll), np.concatenate(elbo), np.concatenate(kl)
    if a.per_image:
        # Each test image's -ELBO, so two models scored on the same images can be compared pairwise.
        elbo.astype("<f8").tofile(a.per_image)
    return {"family": "mnist", "split": "test", "k": a.k, "images": count, "unit": "nats",
            "is_nll": stats(nll), "neg_elbo": stats(elbo), "kl": stats(kl), "data": data.description}


@torch.no_grad()
def hier(model, a) -> dict:
    flags = {"data": [a.data] if a.data else None, "held-out": 0.1, "split-seed": 2017}
    data = T.load_train_data(model, flags)
    if a.bn_batches > 0:
        T.reestimate_batch_norm(model, data.train, a.bn_batches, a.batch, a.seed, a.device)
    images = data.held_out
    count = min(a.limit or len(images), len(images))
    per = []
    for b in range(math.ceil(count / a.batch)):
        start = b * a.batch
        n = min(a.batch, count - start)
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + n])).to(a.device)
        noise = {k: v.to(a.device) for k, v in T.hier_noise(model, n, a.seed, [b, T.HIER_EVAL_STREAM]).items()}
        r = model.losses(x, None, noise)
        per.append(((r["recon"] + r["kl1"] + r["kl2"]).double().cpu().numpy()) / math.log(2))
    bpd = np.concatenate(per)
    return {"family": "hierarchical", "split": "held-out", "images": count, "unit": "bits/dim", "bits_per_dim": stats(bpd),
            "bn_batches": a.bn_batches, "data": data.description}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=None)
    p.add_argument("--bn-batches", type=int, default=0)
    p.add_argument("--per-image", default=None, help="MNIST: write each image's -ELBO to FILE (float64, little-endian)")
    p.add_argument("--chunk", type=int, default=10, help="images per decoder call (MNIST IS-NLL); changes no number")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: every core)")
    a = p.parse_args()
    torch.set_num_threads(max(1, a.threads))
    model, checkpoint = T.load_checkpoint_model(a.checkpoint, a.device)
    t0 = time.perf_counter()
    out = mnist(model, a) if model.dataset == "mnist" else hier(model, a)
    out.update({"preset": checkpoint.config["preset"], "step": checkpoint.config["step"], "seed": a.seed,
                "seconds": round(time.perf_counter() - t0, 2), "device": a.device, "torch": torch.__version__})
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
