"""Figures of the model zoo for docs/results.md (issue 12), drawn with the PyTorch twin only.

usage: PYTHONPATH=python /usr/bin/python3 scripts/zoo-figures.py [--state runs/zoo] [--out docs/figures]
       [--only id,id] [--seed 1] [--threads 1] [--device cpu|cuda]
       PYTHONPATH=python /usr/bin/python3 scripts/zoo-figures.py --check

Reads runs/zoo/<id>/zoo-rounded-f32.safetensors (the shipped float16 weights widened to F32, as
scripts/zoo.mjs leaves them) and writes PNGs plus two JSON files into --out:
  <id>-samples.png        MNIST models: an 8x8 grid of binary samples, the draws of
                          `python -m pixelvae_torch sample --seed S` (z ~ Philox(S, [0,1]), uniforms
                          ~ Philox(S, [0,2])); hierarchical models: 8x8 independent samples,
                          levelNoise(8, 8, S, none) as `hier-sample`.
  <id>-latent-map.png     2-D latent models: encoder means of the 10k fixed-binarized test digits,
                          coloured by class, axes fixed to [-4, 4] (x = z[0] rightwards, y = z[1]
                          upwards), points outside clamped to the border.
  <id>-latent-grid.png    2-D latent models: images decoded from a 12x12 grid of the prior's
                          quantiles (z[0] left to right, z[1] bottom to top, as the map); the PixelVAE
                          samples autoregressively with one set of uniforms shared by all cells, the
                          conv VAE shows its Bernoulli means as grey levels.
  <id>-vary-{top,middle,pixels}.png
                          hierarchical models, Figure 6: 4 rows x 8 columns; a row holds the other
                          levels' noise, its cells vary only the named level (levelNoise(4, 8, S,
                          level), as `hier-sample --grid`), batch-norm statistics from the checkpoint.
  factorised.json         Figure 4's "0-layer PixelCNN": independent Bernoulli pixels with the mean
                          grey level of the 50k training digits; its NLL on the 10k test digits.
  factorised-mean.png     that model's per-pixel probabilities, as grey levels.
  figures.json            [{file, id, what, seed, images, checkpoint, step, seconds, cpu_seconds}] of every file written (entries
                          of earlier runs for other files are kept while those files exist).
A model whose checkpoint is missing is skipped with a note; one that fails is reported and the
others still run (exit code 1 at the end). --check verifies the factorised NLL on a toy set.

factorised_probs and factorised_nll take plain arrays; import them with importlib
(spec_from_file_location: the file name has a dash).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from typing import Dict, List, Optional

import numpy as np
import torch

from pixelvae_torch import cli as C
from pixelvae_torch import data as D
from pixelvae_torch.checkpoint import CheckpointError
from pixelvae_torch.train import load_checkpoint_model

MNIST_SHIPPED = ("table1-gated-pixelvae", "fig5-pixelvae-2d", "fig5-pixelvae-2d-upsample", "fig5-conv-vae-2d", "table1-conv-vae",
                 "table1-gated-pixelcnn")
MNIST_RESULTS = tuple(f"results-{p}" for p in ("pixelcnn", "pixelvae", "gated-pixelvae")) + tuple(
    f"fig4-{p}-l{n}" for n in (1, 2, 4, 8) for p in ("gated-pixelvae", "gated-pixelcnn"))
HIER = ("hier-colour-mnist", "hier-demo")
FACTORISED = "factorised"
CHECKPOINT_NAME = "zoo-rounded-f32.safetensors"
LEVELS = ("top", "middle", "pixels")

# Ten distinct colours, one per digit (Tableau's ten, which stay apart on white).
CLASS_COLOURS = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)], dtype=np.uint8)

# A 3x5 bitmap font: digits and a minus sign, each five rows of three bits (msb = left).
FONT = {
    "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7), "3": (7, 1, 7, 1, 7), "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7), "7": (7, 1, 2, 2, 2), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7),
    "-": (0, 0, 7, 0, 0),
}


def say(message: str) -> None:
    sys.stderr.write(f"zoo-figures: {message}\n")
    sys.stderr.flush()


# ---- pictures -------------------------------------------------------------------------------------

def cell_scale(size: int) -> int:
    """Integer upscaling so a cell is about 56-64 px (2x for MNIST's 28 and the 32 px colour images)."""
    return max(2, 64 // size)


def tile(images: np.ndarray, cols: int, scale: int, gap: int = 1) -> np.ndarray:
    """[N, C, S, S] in [0, 1] -> rows of `cols` cells with a grey gutter (the CLI's image_grid)."""
    return C.image_grid(images, scale, gap, cols)


def draw_text(canvas: np.ndarray, text: str, x: int, y: int, colour, scale: int = 2) -> int:
    """Draws `text` (digits and '-') with its top-left at (x, y); returns the x after it."""
    for ch in text:
        for r, bits in enumerate(FONT[ch]):
            for c in range(3):
                if bits >> (2 - c) & 1:
                    canvas[y + r * scale:y + (r + 1) * scale, x + c * scale:x + (c + 1) * scale] = colour
        x += 4 * scale
    return x


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 4 * scale - scale


def latent_map(means: np.ndarray, labels: np.ndarray, limit: float = 4.0, plot: int = 480, seed: int = 1):
    """A scatter of 2-D points coloured by label on a fixed [-limit, limit]^2 square: tick labels at
    the even integers, a legend row (a colour square and its digit) below. Returns (RGB image,
    number of points clamped to the border)."""
    left, top, bottom_axis, legend_h = 26, 8, 18, 26
    width = left + plot + 8
    height = top + plot + bottom_axis + legend_h
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    x0, y0 = left, top
    light, dark = (225, 225, 225), (90, 90, 90)
    px = lambda v: int(round((v + limit) / (2 * limit) * (plot - 1)))  # noqa: E731
    for t in range(-int(limit), int(limit) + 1):
        p = px(t)
        img[y0:y0 + plot, x0 + p] = light  # vertical grid line at z[0] = t
        img[y0 + plot - 1 - p, x0:x0 + plot] = light
    img[y0:y0 + plot, x0 + px(0)] = (190, 190, 190)
    img[y0 + plot - 1 - px(0), x0:x0 + plot] = (190, 190, 190)
    img[y0 - 1, x0 - 1:x0 + plot + 1] = dark  # frame
    img[y0 + plot, x0 - 1:x0 + plot + 1] = dark
    img[y0 - 1:y0 + plot + 1, x0 - 1] = dark
    img[y0 - 1:y0 + plot + 1, x0 + plot] = dark
    for t in range(-int(limit), int(limit) + 1, 2):
        label = str(t)
        p = px(t)
        draw_text(img, label, x0 + p - text_width(label) // 2, y0 + plot + 5, dark)
        draw_text(img, label, x0 - 4 - text_width(label), y0 + plot - 1 - p - 5, dark)
    clipped = int(np.sum(np.any(np.abs(means) > limit, axis=1)))
    xy = np.clip(means.astype(np.float64), -limit, limit)
    cx = np.round((xy[:, 0] + limit) / (2 * limit) * (plot - 1)).astype(int)
    cy = (plot - 1) - np.round((xy[:, 1] + limit) / (2 * limit) * (plot - 1)).astype(int)
    # A fixed shuffle, so no class is drawn entirely on top of another.
    order = np.random.default_rng(seed).permutation(len(means))
    for i in order:
        xa, ya = x0 + min(cx[i], plot - 2), y0 + min(cy[i], plot - 2)
        img[ya:ya + 2, xa:xa + 2] = CLASS_COLOURS[int(labels[i]) % 10]
    # Legend: ten entries spread across the plot's width.
    ly = top + plot + bottom_axis + 6
    step = plot // 10
    for d in range(10):
        lx = x0 + d * step + 8
        img[ly:ly + 12, lx:lx + 12] = CLASS_COLOURS[d]
        draw_text(img, str(d), lx + 16, ly + 1, (0, 0, 0))
    return img, clipped


# ---- the factorised model (Figure 4's 0-layer PixelCNN) ------------------------------------------

def factorised_probs(train_u8: np.ndarray) -> np.ndarray:
    """Per-pixel P(pixel = 1) of a dynamically binarized set: the mean intensity / 255 (the expectation
    of Bernoulli(intensity / 255)), in float64, clamped to [1e-6, 1 - 1e-6] so no test pixel is impossible."""
    p = train_u8.astype(np.float64).mean(axis=0) / 255.0
    return np.clip(p, 1e-6, 1 - 1e-6)


def factorised_nll(train_u8: np.ndarray, test_bits: np.ndarray) -> dict:
    """NLL in nats per image of independent Bernoulli pixels fitted to `train_u8` ([N, H, W] 0..255), on
    `test_bits` ([M, H, W] 0/1): per-image values and their mean, sd (n - 1), standard error and n."""
    p = factorised_probs(train_u8)
    x = test_bits.astype(np.float64)
    per_image = -(x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(len(x), -1).sum(1)
    n = len(per_image)
    sd = float(per_image.std(ddof=1)) if n > 1 else math.inf
    return {"mean": float(per_image.mean()), "sd": sd, "stderr": sd / math.sqrt(n), "n": n, "per_image": per_image}


def self_check() -> int:
    """factorised_nll on three 1x2 images against values worked out by hand."""
    train = np.array([[[0, 255]], [[255, 255]], [[255, 255]]], dtype=np.uint8)  # p = (2/3, 1 -> 1 - 1e-6)
    test = np.array([[[1, 1]], [[0, 1]], [[1, 0]]], dtype=np.uint8)
    # -log(2/3) = 0.4054651081, -log(1/3) = 1.0986122887, -log(1e-6) = 13.8155105580,
    # -log(1 - 1e-6) = 1.0000005e-6.
    want = np.array([0.4054651081 + 1.0000005e-6, 1.0986122887 + 1.0000005e-6, 0.4054651081 + 13.8155105580])
    want_mean = 15.7250530629 / 3 + 2 * 1.0000005e-6 / 3  # 5.2416850210
    want_sd = math.sqrt(sum((v - want_mean) ** 2 for v in want) / 2)
    r = factorised_nll(train, test)
    problems = []
    if not np.allclose(r["per_image"], want, rtol=0, atol=1e-9):
        problems.append(f"per-image NLL {r['per_image'].tolist()} != {want.tolist()}")
    for key, value in (("mean", want_mean), ("sd", want_sd), ("stderr", want_sd / math.sqrt(3))):
        if abs(r[key] - value) > 1e-9:
            problems.append(f"{key} {r[key]!r} != {value!r}")
    if r["n"] != 3:
        problems.append(f"n {r['n']} != 3")
    probs = factorised_probs(train)
    if abs(probs[0, 0] - 2 / 3) > 1e-15 or probs[0, 1] != 1 - 1e-6:
        problems.append(f"probabilities {probs.tolist()} != [[2/3, 1 - 1e-6]]")
    for p in problems:
        say(f"check FAILED: {p}")
    if not problems:
        say(f"check passed: toy NLL mean {r['mean']:.10f} sd {r['sd']:.10f} nats (hand-computed {want_mean:.10f})")
    return 1 if problems else 0


# ---- per-model figures ----------------------------------------------------------------------------

class Figures:
    """Writes PNGs into `out` and keeps the figures.json entries."""

    def __init__(self, out: str, seed: int, device: str):
        self.out, self.seed, self.device = out, seed, device
        self.entries: List[dict] = []
        # Which weights drew the next figures (set per model): a model trained in several runs,
        # e.g. runs/zoo and runs/zoo-long, must say which one its pictures show.
        self.source: dict = {}

    @staticmethod
    def clock() -> tuple:
        """(wall, process CPU) now: beside a training the wall time says little, the CPU time more."""
        return time.perf_counter(), time.process_time()

    @staticmethod
    def since(t0: tuple) -> dict:
        return {"seconds": round(time.perf_counter() - t0[0], 2), "cpu_seconds": round(time.process_time() - t0[1], 2)}

    def write(self, name: str, pixels: np.ndarray, model_id: str, what: str, images: int, t0: tuple, **extra) -> None:
        path = os.path.join(self.out, name)
        C.write_png(path, pixels)
        kb = os.path.getsize(path) / 1024
        took = self.since(t0)
        say(f"  wrote {name} ({pixels.shape[1]}x{pixels.shape[0]}, {kb:.0f} KB, {took['seconds']:.1f}s, CPU {took['cpu_seconds']:.1f}s)")
        if kb > 300:
            say(f"  note: {name} is over 300 KB")
        self.entries.append({"file": name, "id": model_id, "what": what, "seed": self.seed, "images": images,
                             **self.source, **took, **extra})

    # -- MNIST ------------------------------------------------------------------------------------
    def mnist_samples(self, model_id: str, model) -> None:
        n, s = 64, model.config["imageSize"]
        say(f"  sampling {n} images ({s * s} pixel passes)" if model.is_autoregressive else f"  sampling {n} images")
        t0 = self.clock()
        z = torch.from_numpy(D.random_normal((n, model.latent_dim), self.seed, [0, 1])).to(self.device) if model.has_latent else None
        uniforms = torch.from_numpy(D.random_uniform((n, 1, s, s), self.seed, [0, 2])).to(self.device)
        images, _ = model.sample_with(z, uniforms)
        pixels = tile(images.cpu().numpy(), 8, cell_scale(s))
        self.write(f"{model_id}-samples.png", pixels, model_id,
                   "8x8 binary samples (the draws of `python -m pixelvae_torch sample --n 64` with this seed)", n,
                   t0)

    def latent_map(self, model_id: str, model, data: D.Mnist) -> None:
        t0 = self.clock()
        bits, labels = data.test.images, data.test.labels
        say(f"  encoding the {len(bits)} test digits")
        means = []
        for start in range(0, len(bits), 500):
            x = torch.from_numpy(bits[start:start + 500][:, None].astype(np.float32)).to(self.device)
            means.append(model.encode(x)[0].cpu().numpy())
        means = np.concatenate(means)
        img, clipped = latent_map(means, labels, seed=self.seed)
        if clipped:
            say(f"  {clipped} of {len(means)} means lie outside [-4, 4]^2: drawn on the border")
        self.write(f"{model_id}-latent-map.png", img, model_id,
                   "encoder means of the 10k fixed-binarized test digits, coloured by class (legend below); axes "
                   "[-4, 4], x = z[0] rightwards, y = z[1] upwards; points outside are drawn on the border",
                   len(means), t0, clipped=clipped,
                   colours={str(d): "#%02x%02x%02x" % tuple(int(v) for v in CLASS_COLOURS[d]) for d in range(10)})

    def latent_grid(self, model_id: str, model, side: int = 12) -> None:
        s = model.config["imageSize"]
        t0 = self.clock()
        # The prior's quantiles (i + 1/2) / side: Phi^-1(p) = sqrt(2) erfinv(2p - 1).
        q = torch.erfinv(torch.tensor([(2 * (i + 0.5) / side - 1) for i in range(side)], dtype=torch.float64)) * math.sqrt(2)
        zx = q.repeat(side)  # column: z[0] left to right
        zy = q.flip(0).repeat_interleave(side)  # row: z[1] top (high) to bottom (low), as the map
        z = torch.stack([zx, zy], 1).float().to(self.device)
        n = side * side
        # One set of uniforms for every cell, so the cells differ by z alone.
        u = torch.from_numpy(D.random_uniform((1, 1, s, s), self.seed, [0, 2])).to(self.device).expand(n, 1, s, s).contiguous()
        say(f"  decoding a {side}x{side} grid of z" + (f" ({s * s} pixel passes)" if model.is_autoregressive else ""))
        images, probs = model.sample_with(z, u)
        shown = images if model.is_autoregressive else probs
        how = ("binary samples drawn autoregressively with the same uniforms in every cell" if model.is_autoregressive
               else "the decoder's Bernoulli means as grey levels")
        self.write(f"{model_id}-latent-grid.png", tile(shown.cpu().numpy(), side, cell_scale(s)), model_id,
                   f"{side}x{side} images decoded from z on the prior's quantiles (i + 1/2) / {side}, z[0] left to right, "
                   f"z[1] bottom to top (the map's orientation); {how}", n, t0,
                   z_range=[round(float(q[0]), 4), round(float(q[-1]), 4)])

    # -- hierarchical -----------------------------------------------------------------------------
    def hier_grid(self, model_id: str, model, rows: int, cols: int, vary: Optional[str]) -> None:
        s = model.config["imageSize"]
        t0 = self.clock()
        say(f"  sampling {rows}x{cols} images" + (f", varying only {vary}" if vary else "") + f" ({s * s * 3} sub-pixel passes)")
        noise = model.level_noise(rows, cols, self.seed, vary)
        images = model.generate(noise["eps1"], noise["uniforms"], z2=noise["z2"])["images"]
        # A 2 px gutter: 1 px of grey is lost among coloured pixels.
        pixels = tile(images.cpu().numpy().astype(np.float32) / 255.0, cols, cell_scale(s), gap=2)
        if vary is None:
            name, what = f"{model_id}-samples.png", (f"{rows}x{cols} independent samples (levelNoise({rows}, {cols}, seed, none), "
                                                     "as `hier-sample`), batch-norm statistics from the checkpoint")
        else:
            others = " and ".join(level for level in LEVELS if level != vary)
            name = f"{model_id}-vary-{vary}.png"
            what = (f"Figure 6: {rows} rows x {cols} columns; each row holds one draw of the {others} noise, its cells vary "
                    f"only the {vary} level's (levelNoise({rows}, {cols}, seed, '{vary}'), as `hier-sample --grid {vary}`); "
                    "batch-norm statistics from the checkpoint")
        self.write(name, pixels, model_id, what, rows * cols, t0)

    # -- the factorised model ---------------------------------------------------------------------
    def factorised(self, data: D.Mnist) -> None:
        t0 = self.clock()
        r = factorised_nll(data.train.images, data.test.images)
        took = self.since(t0)
        result = {
            "model": "independent Bernoulli pixels, P(pixel = 1) = mean training intensity / 255 (the expectation of "
                     "dynamic binarization), clamped to [1e-6, 1 - 1e-6]: Figure 4's 0-layer PixelCNN (no autoregression, no latent)",
            "train_images": int(data.train.count), "split": "test", "unit": "nats per image",
            "nll": {k: r[k] for k in ("mean", "sd", "stderr", "n")},
            "parameters": int(np.prod(data.train.images.shape[1:])), "data": data.description,
        }
        path = os.path.join(self.out, "factorised.json")
        with open(path, "w") as fh:
            fh.write(json.dumps(result, indent=2) + "\n")
        say(f"  factorised NLL {r['mean']:.3f} +- {r['stderr']:.3f} nats (sd {r['sd']:.3f}, n {r['n']}); wrote factorised.json")
        self.entries.append({"file": "factorised.json", "id": FACTORISED, "what": "NLL of the factorised (0-layer) model on the test split",
                             "seed": self.seed, "binarization_seed": data.seed, "images": r["n"], **took})
        probs = factorised_probs(data.train.images)[None, None]
        s = probs.shape[-1]
        self.write("factorised-mean.png", tile(probs, 1, 2 * cell_scale(s)), FACTORISED,
                   "the factorised model's P(pixel = 1) as grey levels (white = 1)", 1, self.clock())


# ---- main -----------------------------------------------------------------------------------------

def merge_index(out: str, entries: List[dict]) -> List[dict]:
    """Earlier runs' entries for files this run did not write are kept while their files exist."""
    path = os.path.join(out, "figures.json")
    written = {e["file"] for e in entries}
    old: List[dict] = []
    if os.path.exists(path):
        try:
            with open(path) as fh:
                old = [e for e in json.load(fh) if isinstance(e, dict) and "file" in e]
        except (OSError, ValueError):
            old = []
    kept = [e for e in old if e["file"] not in written and os.path.exists(os.path.join(out, e["file"]))]
    return kept + entries


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Figures of the model zoo (see the head of this file).")
    parser.add_argument("--state", default="runs/zoo", help="zoo state folder holding <id>/" + CHECKPOINT_NAME)
    parser.add_argument("--out", default="docs/figures", help="where the PNGs and JSON files go")
    parser.add_argument("--only", default=None, help=f"comma-separated ids (models, or '{FACTORISED}')")
    parser.add_argument("--seed", type=int, default=1, help="seed of every draw")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a training may run beside)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--rows", type=int, default=4, help="rows of the hierarchical level grids")
    parser.add_argument("--cols", type=int, default=8, help="columns of the hierarchical level grids")
    parser.add_argument("--check", action="store_true", help="verify the factorised NLL on a toy set and exit")
    a = parser.parse_args(argv)
    if a.check:
        return self_check()
    torch.set_num_threads(max(1, a.threads))
    known = MNIST_SHIPPED + MNIST_RESULTS + HIER + (FACTORISED,)
    only = [s for s in a.only.split(",") if s] if a.only else None
    for i in only or []:
        if i not in known:
            parser.error(f"--only: no id '{i}' (one of {', '.join(known)})")
    selected = [i for i in known if only is None or i in only]
    os.makedirs(a.out, exist_ok=True)
    figs = Figures(a.out, a.seed, a.device)
    failed: List[str] = []
    mnist_cache: Dict[int, D.Mnist] = {}

    def mnist_data(size: int) -> D.Mnist:
        if size not in mnist_cache:
            say(f"loading MNIST ({size}x{size})")
            mnist_cache[size] = D.load_mnist_split(size)
        return mnist_cache[size]

    t_all = time.perf_counter()
    for model_id in selected:
        if model_id == FACTORISED:
            say("factorised model")
            try:
                figs.factorised(mnist_data(28))
            except Exception as error:  # one figure's failure must not stop the others
                failed.append(model_id)
                say(f"factorised: FAILED: {error}")
                traceback.print_exc()
            continue
        path = os.path.join(a.state, model_id, CHECKPOINT_NAME)
        if not os.path.exists(path):
            say(f"{model_id}: skipped (no {path})")
            continue
        try:
            model, checkpoint = load_checkpoint_model(path, a.device)
            model.eval()
            say(f"{model_id}: {model.preset}, step {checkpoint.config['step']}")
            figs.source = {"checkpoint": os.path.relpath(path), "step": checkpoint.config["step"]}
            with torch.no_grad():
                if model.dataset == "mnist":
                    two_d = model.has_latent and model.latent_dim == 2
                    if model_id in MNIST_SHIPPED:
                        figs.mnist_samples(model_id, model)
                    if two_d:
                        figs.latent_map(model_id, model, mnist_data(model.config["imageSize"]))
                        figs.latent_grid(model_id, model)
                    if model_id not in MNIST_SHIPPED and not two_d:
                        say(f"  no figures for {model_id} (not shipped, latent not 2-D)")
                else:
                    for vary in LEVELS:
                        figs.hier_grid(model_id, model, a.rows, a.cols, vary)
                    figs.hier_grid(model_id, model, 8, 8, None)
        except Exception as error:  # noqa: BLE001 - reported, and the other models still run
            failed.append(model_id)
            say(f"{model_id}: FAILED: {error}")
            if not isinstance(error, (CheckpointError, D.DataError)):  # those messages say it all
                traceback.print_exc()
    index = merge_index(a.out, figs.entries)
    with open(os.path.join(a.out, "figures.json"), "w") as fh:
        fh.write(json.dumps(index, indent=2) + "\n")
    say(f"wrote {len(figs.entries)} files and figures.json into {a.out} in {time.perf_counter() - t_all:.0f}s"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
