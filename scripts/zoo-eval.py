"""Per-image evaluation for the model zoo (scripts/zoo.mjs), on the PyTorch twin's models.

`python -m pixelvae_torch eval` prints means only; the zoo also needs each figure's standard error
(the spread over images / sqrt(n)), so this draws exactly what `eval` draws (MNIST: noise
Philox(seed, [batch, 7]); hierarchical: batch-norm re-estimation over --bn-batches training batches
of EpochSampler(seed), noise posteriorNoise(seed, [batch, 9])) and keeps every image's value. Its
means equal `eval`'s for the same flags (zoo.mjs checks that on a small sample). With --ladder it
also gives the IS-NLL from the first k of the K samples for smaller k, paired per image against K
(scripts/is-nll-ladder.mjs: how far k = 10 is from the paper's N = 5000).

usage: PYTHONPATH=python python3 scripts/zoo-eval.py --checkpoint F [--k K] [--limit N] [--batch B]
       [--seed S] [--device cpu|cuda] [--data PATH --bn-batches B] [--per-image FILE] [--ladder 1,10,100]
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
    ladder = sorted(set(a.ladder)) if a.ladder else []
    if ladder and (ladder[-1] != a.k or ladder[0] < 1 or not model.has_latent):
        raise SystemExit(f"zoo-eval: --ladder needs a latent model and values from 1 to --k ({a.k}), its largest equal to --k")
    # At most --passes decoder passes run at once: past a few hundred the activations outgrow the
    # cache and the allocator's page faults dominate (several times slower on a CPU).
    chunk = max(1, min(a.chunk, a.passes // a.k))
    group = min(a.k, a.passes)
    nll, elbo, kl, log_w = [], [], [], []
    model.eval()
    t0 = time.perf_counter()
    for b in range(math.ceil(count / a.batch)):
        start = b * a.batch
        n = min(a.batch, count - start)
        x = torch.from_numpy(bits[start:start + n][:, None].astype(np.float32)).to(a.device)
        noise = None
        if model.has_latent:
            noise = torch.from_numpy(D.random_normal((a.k * n, model.latent_dim), a.seed, [b, T.MNIST_EVAL_STREAM])).to(a.device)
        # The noise is drawn per batch (as `eval` draws it); the decoder passes run on --chunk images
        # at a time and, past --passes samples, on groups of samples. Each image's value depends only on
        # its own noise, so neither changes a number (beyond float rounding in the group merge).
        eps = noise.reshape(a.k, n, -1) if noise is not None else None
        groups = [(j0, min(a.k, j0 + group)) for j0 in range(0, a.k, group)] if eps is not None else [(0, a.k)]
        for c0 in range(0, n, chunk):
            c1 = min(n, c0 + chunk)
            rs = [model.is_nll(x[c0:c1], j1 - j0, eps[j0:j1, c0:c1].reshape(-1, eps.shape[2]) if eps is not None else None)
                  for j0, j1 in groups]
            kl.append(rs[0]["kl"].double().cpu().numpy())
            w = np.concatenate([r["log_w"].double().cpu().numpy() for r in rs]) if eps is not None else None
            if len(rs) == 1:
                nll.append(rs[0]["nll"].double().cpu().numpy())
                elbo.append(rs[0]["neg_elbo"].double().cpu().numpy())
            else:
                # The groups merged: the log-mean-exp over all k weights, and the k samples' mean reconstruction.
                nll.append(-(logsumexp0(w) - math.log(a.k)))
                recon = sum((r["neg_elbo"] - r["kl"]).double().cpu().numpy() * (j1 - j0) for r, (j0, j1) in zip(rs, groups))
                elbo.append(recon / a.k + kl[-1])
            if ladder:
                log_w.append(w)
        sys.stderr.write(f"zoo-eval: {start + n}/{count} images, {(start + n) / (time.perf_counter() - t0):.1f} images/s\n")
    nll, elbo, kl = np.concatenate(nll), np.concatenate(elbo), np.concatenate(kl)
    if a.per_image:
        # Each test image's -ELBO, so two models scored on the same images can be compared pairwise.
        elbo.astype("<f8").tofile(a.per_image)
    out = {"family": "mnist", "split": "test", "k": a.k, "images": count, "unit": "nats",
           "is_nll": stats(nll), "neg_elbo": stats(elbo), "kl": stats(kl), "data": data.description}
    if ladder:
        out["ladder"] = k_ladder(np.concatenate(log_w, axis=1), ladder)
    return out


def logsumexp0(w: np.ndarray) -> np.ndarray:
    top = w.max(0)
    return top + np.log(np.exp(w - top).sum(0))


def k_ladder(log_w: np.ndarray, ladder: list) -> list:
    """IS-NLL from the first k of the K log weights [K, n] for each k of the ladder: the estimates are
    nested (every k uses the draws of the smaller ones), so each one's difference from the K-sample
    estimate is paired per image and its standard error is that of the per-image differences."""
    def nll_at(k: int) -> np.ndarray:
        return -(logsumexp0(log_w[:k]) - math.log(k))
    largest = nll_at(ladder[-1])
    rows = []
    for k in ladder:
        v = nll_at(k)
        rows.append({"k": k, "is_nll": stats(v), "minus_largest": stats(v - largest)})
    return rows


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
    p.add_argument("--chunk", type=int, default=10,
                   help="images per decoder call (MNIST IS-NLL; at most passes / k); changes no number")
    p.add_argument("--passes", type=int, default=200,
                   help="decoder passes per call at most (MNIST IS-NLL; larger k runs in groups of samples); changes no number")
    p.add_argument("--ladder", type=lambda v: [int(x) for x in v.split(",")], default=None,
                   help="MNIST latent models: also the IS-NLL from the first k samples for each k in this comma list (its largest = --k)")
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
