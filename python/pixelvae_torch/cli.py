"""`python3 -m pixelvae_torch train|eval|sample|knn`: the flags of `npm run cli` (src/cli/main.ts,
hier.ts) where they mean the same, plus --nproc and --device. Errors: one line, exit code 2 for a bad
command line, 1 for anything else (bad checkpoint, missing data, a dead process)."""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import time
import zlib
from typing import Dict, List, Optional

import numpy as np

from . import data as D

# (type, help, default)
COMMON = {
    "seed": ("int", "seed for noise, batch order and binarization draws", 1),
    "binarization-seed": ("int", "seed of the fixed valid/test binarization (MNIST)", D.DEFAULT_BINARIZATION_SEED),
    "device": ("string", "cpu or cuda", "cpu"),
    "help": ("boolean", "show this help", None),
}
MODEL = {
    "preset": ("string", "model preset: an MNIST preset (conv-vae, pixelcnn, gated-pixelcnn, pixelvae, gated-pixelvae, "
                         "gated-pixelvae-cond) or hier-tiny, hier-small, hier-32px, hier-64px", None),
    "latent": ("int", "latent dimension", None),
    "layers": ("int", "residual PixelCNN layers", None),
    "width": ("int", "PixelCNN stack width P", None),
    "filter": ("int", "PixelCNN residual kernel size (odd, <= 7)", None),
    "input-filter": ("int", "PixelCNN input kernel size (odd, <= 7)", None),
    "output-width": ("int", "width of the 1x1 output layers (upsampling variants)", None),
    "warmup": ("int", "KL warm-up steps (hier: all three schedules)", None),
    "init-seed": ("int", "seed of parameter initialisation", 1),
    "image-size": ("int", "train on digits resized to N x N", 28),
    "encoder-dims": ("string", "encoder widths, four comma-separated numbers", None),
    "decoder-dims": ("string", "upsampling decoder widths, three comma-separated numbers", None),
    "feature-norm": ("string", "gated-pixelvae: tanh (default) or rms-tanh (each image's decoder features divided by their rms before the tanh)", None),
}
HIER_DATA = {
    "data": ("strings", "hier: image folder, zip, CIFAR-10 .bin, or 'demo' (repeatable)", None),
    "held-out": ("number", "hier: held-out fraction when the data has no split", 0.1),
    "split-seed": ("int", "hier: seed of the train / held-out split", 2017),
}

COMMANDS = {
    "train": ("Train (data parallel with --nproc N); keeps last.safetensors (also every --save-minutes) and best.safetensors in --out.", {
        **MODEL,
        "steps": ("int", "training steps (default 1000; hier: the preset's)", None),
        "batch": ("int", "global batch size, split evenly over the processes (default 100; hier: the preset's)", None),
        "lr": ("number", "Adam learning rate (default 1e-3)", None),
        "clip": ("number", "gradient clipping: element-wise bound (MNIST, default 1) or global norm (hier, default 5); 0: off", None),
        "valid-every": ("int", "steps between validation bounds (0: only at the end)", 500),
        "valid-limit": ("int", "validation images used", 10000),
        "eval-every": ("int", "hier: steps between held-out evaluations (0: only at the end)", 1000),
        "eval-limit": ("int", "hier: held-out images per evaluation", 10000),
        "bn-batches": ("int", "hier: batches of the batch-norm re-estimation before each evaluation", None),
        "log-every": ("int", "steps between metric lines in log.jsonl", 50),
        "train-limit": ("int", "use only the first N training images", None),
        "out": ("string", "output folder", "runs/latest"),
        "resume": ("string", "checkpoint to resume from (model, optimizer state, step): ours, the CLI's or the app's", None),
        "nproc": ("int", "processes on this machine (gloo on CPU, NCCL with --device cuda, one GPU each)", 1),
        "save-minutes": ("number", "also write last.safetensors every this many minutes (0: off)", 5),
        "save-every": ("int", "also write last.safetensors every this many steps (0: off)", 0),
        "max-seconds": ("number", "stop after this many seconds of training, at a step boundary, and save as at the end (0: no limit)", 0),
        **HIER_DATA,
        **COMMON,
    }),
    "eval": ("Negative ELBO and importance-sampled NLL (nats per image; hier: bits per dimension) as one JSON line.", {
        "checkpoint": ("string", "checkpoint file (.safetensors)", None),
        "split": ("string", "test or valid (hier: held-out or train)", None),
        "k": ("int", "importance samples per image (default 10; hier: IS-NLL only when given)", None),
        "limit": ("int", "evaluate only the first N images", None),
        "batch": ("int", "images per batch (default 100; hier: 32, as hier-eval)", None),
        "bn-batches": ("int", "hier: re-estimate batch-norm statistics over this many training batches first (0: the checkpoint's)", 0),
        **HIER_DATA,
        **COMMON,
    }),
    "sample": ("Draw samples and write a PNG grid (MNIST: the same draws as the Node CLI for the same --seed).", {
        "checkpoint": ("string", "checkpoint file", None),
        "n": ("int", "number of samples", 16),
        "out": ("string", "PNG file to write", "samples.png"),
        "probs": ("boolean", "draw the last pass's probabilities instead of the binary samples", None),
        "scale": ("int", "pixel upscaling in the PNG", 2),
        **COMMON,
    }),
    "knn": ("k-nearest-neighbour classification error in latent space (encoder means), test split.", {
        "checkpoint": ("string", "checkpoint file", None),
        "k": ("int", "neighbours", 5),
        "train-limit": ("int", "training images used as the labelled set", 50000),
        "test-limit": ("int", "test images classified", 10000),
        **COMMON,
    }),
}


class UsageError(ValueError):
    pass


def parse_flags(command: str, argv: List[str], spec: Dict[str, tuple]) -> dict:
    """args.ts parseFlags: --name value or --name=value, typed, with the same messages."""
    out = {name: s[2] for name, s in spec.items() if s[2] is not None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise UsageError(f"{command}: unexpected argument '{arg}' (flags start with --; see {command} --help)")
        name, _, inline = arg[2:].partition("=")
        has_inline = "=" in arg
        if name not in spec:
            known = ", ".join(f"--{f}" for f in spec)
            raise UsageError(f"{command}: unknown flag --{name} (known: {known})")
        kind = spec[name][0]
        if kind == "boolean":
            out[name] = True if not has_inline else inline != "false"
            i += 1
            continue
        if has_inline:
            value = inline
        else:
            i += 1
            value = argv[i] if i < len(argv) else None
            if value is not None and value.startswith("--"):
                value = None
        if value is None:
            raise UsageError(f"{command}: --{name} needs a value")
        if kind in ("int", "number"):
            try:
                n = float(value)
            except ValueError:
                n = math.nan
            if not math.isfinite(n) or (kind == "int" and not n.is_integer()):
                raise UsageError(f"{command}: --{name} expects {'an integer' if kind == 'int' else 'a number'}, got '{value}'")
            out[name] = int(n) if kind == "int" else n
        elif kind == "strings":
            out[name] = out.get(name, []) + [value]
        else:
            out[name] = value
        i += 1
    if out.get("device") not in ("cpu", "cuda"):
        raise UsageError(f"{command}: --device must be cpu or cuda, not '{out.get('device')}'")
    return out


def usage(command: str, summary: str, spec: Dict[str, tuple]) -> str:
    lines = [f"usage: python3 -m pixelvae_torch {command} [flags]", "", summary, "", "flags:"]
    for name, (_, text, default) in spec.items():
        lines.append(f"  --{name:<16} {text}" + (f" (default {default})" if default is not None else ""))
    return "\n".join(lines)


def main_usage() -> str:
    return "\n".join(["usage: python3 -m pixelvae_torch <command> [flags]   (PYTHONPATH=python from the repository)", "",
                      "commands:"] + [f"  {n:<8} {c[0]}" for n, c in COMMANDS.items()] +
                     ["", "Run `<command> --help` for its flags. Data: " + D.describe_mnist_data()])


def _need(f: dict, name: str, command: str):
    if f.get(name) is None:
        raise UsageError(f"{command}: --{name} is required")
    return f[name]


# ---- eval -------------------------------------------------------------------------------------------------

def eval_command(f: dict) -> None:
    import torch
    from .train import evaluate_mnist, evaluate_hier, load_checkpoint_model, reestimate_batch_norm, Progress, load_train_data
    path = _need(f, "checkpoint", "eval")
    device = _device(f)
    model, checkpoint = load_checkpoint_model(path, device)
    step = checkpoint.config["step"]
    t0 = time.perf_counter()
    k = f.get("k") if f.get("k") is not None else (10 if model.dataset == "mnist" else 0)
    if f.get("k") is not None and k < 1:
        raise UsageError("eval: --k must be at least 1")
    if model.dataset == "mnist":
        split = f.get("split") or "test"
        if split not in ("test", "valid"):
            raise UsageError(f"eval: --split must be test or valid, not '{split}'")
        data = D.load_mnist_split(model.config["imageSize"], None, f["binarization-seed"])
        bits = getattr(data, split).images
        limit = f.get("limit") if f.get("limit") is not None else len(bits)
        progress = Progress(f"eval k={k}", min(limit, len(bits)), "images")
        r = evaluate_mnist(model, bits, k, f.get("batch") or 100, f["seed"], limit, device, progress.update)
        line = {"command": "eval", "preset": model.config["preset"], "step": step, "split": split, "images": r["images"],
                "neg_elbo_nats": round(r["neg_elbo"], 4), "is_nll_nats": round(r["nll"], 4), "importance_samples": k,
                "reconstruction_nats": round(r["reconstruction"], 4), "kl_nats": round(r["kl"], 4),
                "seconds": round(time.perf_counter() - t0, 2), "data": data.description, "device": device, "torch": torch.__version__}
    else:
        split = f.get("split") or "held-out"
        if split not in ("held-out", "train"):
            raise UsageError(f"eval: --split must be held-out or train for a hierarchical model, not '{split}'")
        data = load_train_data(model, f)
        batch = f.get("batch") or 32
        if f["bn-batches"] > 0:
            reestimate_batch_norm(model, data.train, f["bn-batches"], batch, f["seed"], device)
        images = data.held_out if split == "held-out" else data.train
        r = evaluate_hier(model, images, batch, f["seed"], f.get("limit"), device, k=k)
        line = {"command": "eval", "preset": model.preset, "step": step, "split": split, "images": r["images"],
                "bits_per_dim": round(r["bits_per_dim"], 5), "neg_elbo_nats_per_dim": round(r["nats_per_dim"], 5),
                "reconstruction_nats_per_dim": round(r["reconstruction"], 5), "kl_nats_per_dim": round(r["kl1"] + r["kl2"], 5),
                "kl1_nats_per_dim": round(r["kl1"], 5), "kl2_nats_per_dim": round(r["kl2"], 5),
                **({"is_nll_bits_per_dim": round(r["is_nll_bits_per_dim"], 5), "is_nll_nats_per_dim": round(r["is_nll_nats_per_dim"], 5),
                    "importance_samples": k} if k > 0 else {}),
                "bound": "negative ELBO (one z sample per image, no importance sampling)",
                "bn_statistics": f"re-estimated over {f['bn-batches']} training batches" if f["bn-batches"] > 0 else "from the checkpoint",
                "seconds": round(time.perf_counter() - t0, 2), "data": data.description, "device": device, "torch": torch.__version__}
    print(json.dumps(line), flush=True)


# ---- sample -------------------------------------------------------------------------------------------------

def write_png(path: str, pixels: np.ndarray) -> None:
    """8-bit grey (H, W) or RGB (H, W, 3) PNG, no dependency."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
                 + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def image_grid(images: np.ndarray, scale: int = 2, gap: int = 1, cols: Optional[int] = None) -> np.ndarray:
    """[N, C, S, S] values in [0, 1] -> one uint8 image, `cols` (default ceil(sqrt(N))) columns, a `gap`-pixel border."""
    n, c, s, _ = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    cell = s * scale
    out = np.full((rows * (cell + gap) + gap, cols * (cell + gap) + gap, c), 128, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        img = np.clip(np.round(images[i].transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
        img = img.repeat(scale, 0).repeat(scale, 1)
        y, x = gap + r * (cell + gap), gap + col * (cell + gap)
        out[y:y + cell, x:x + cell] = img
    return out[:, :, 0] if c == 1 else out


def sample_command(f: dict) -> None:
    import torch
    from .train import load_checkpoint_model
    path = _need(f, "checkpoint", "sample")
    device = _device(f)
    model, _ = load_checkpoint_model(path, device)
    n, seed = f["n"], f["seed"]
    t0 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        if model.dataset == "mnist":
            s = model.config["imageSize"]
            # The Node CLI's draws: z ~ Philox(seed, [0, 1]), uniforms ~ Philox(seed, [0, 2]).
            z = torch.from_numpy(D.random_normal((n, model.latent_dim), seed, [0, 1])).to(device) if model.has_latent else None
            uniforms = torch.from_numpy(D.random_uniform((n, 1, s, s), seed, [0, 2])).to(device)
            images, probs = model.sample_with(z, uniforms)
            pixels = (probs if f.get("probs") else images).cpu().numpy()
        else:
            # hier-sample's draws for --rows 1 --cols n --grid none: levelNoise(1, n, seed, null).
            noise = {k: v.to(device) for k, v in model.level_noise(1, n, seed, None).items()}
            images = model.generate(noise["eps1"], noise["uniforms"], z2=noise["z2"])["images"]
            pixels = images.cpu().numpy().astype(np.float32) / 255.0
    seconds = time.perf_counter() - t0
    write_png(f["out"], image_grid(pixels, f["scale"]))
    print(json.dumps({"command": "sample", "preset": model.preset, "n": n, "seed": seed, "seconds": round(seconds, 2),
                      "out": f["out"], "device": device}), flush=True)


# ---- knn ----------------------------------------------------------------------------------------------------

def knn_error(train_means: np.ndarray, train_labels: np.ndarray, test_means: np.ndarray, test_labels: np.ndarray, k: int) -> float:
    """latent.ts knnError: squared Euclidean distance, majority vote, a tie to the nearer neighbour's label."""
    import torch
    if k < 1 or k > len(train_means):
        raise UsageError(f"knn: k = {k} must be in 1..{len(train_means)}")
    tr = torch.from_numpy(train_means.astype(np.float64))
    wrong = 0
    for start in range(0, len(test_means), 500):
        te = torch.from_numpy(test_means[start:start + 500].astype(np.float64))
        d = torch.cdist(te, tr) ** 2
        idx = torch.topk(d, k, dim=1, largest=False, sorted=True).indices.numpy()
        for row, truth in zip(idx, test_labels[start:start + 500]):
            labels = train_labels[row]
            counts: Dict[int, int] = {}
            for lab in labels:
                counts[int(lab)] = counts.get(int(lab), 0) + 1
            predicted, most = int(labels[0]), 0
            for lab in labels:  # distance order: a tie goes to the nearer neighbour
                if counts[int(lab)] > most:
                    predicted, most = int(lab), counts[int(lab)]
            wrong += predicted != int(truth)
    return wrong / len(test_means)


def knn_command(f: dict) -> None:
    import torch
    from .train import load_checkpoint_model
    path = _need(f, "checkpoint", "knn")
    device = _device(f)
    model, _ = load_checkpoint_model(path, device)
    if model.dataset != "mnist" or not model.has_latent:
        raise UsageError(f"knn: {model.preset} has no MNIST latent space")
    data = D.load_mnist_split(model.config["imageSize"], None, f["binarization-seed"])
    train = data.train
    n_train = min(f["train-limit"], train.count)
    n_test = min(f["test-limit"], data.test.count)
    model.eval()

    def embed(images: np.ndarray, binary: bool) -> np.ndarray:
        """latent.ts embed(): batches of 100; an intensity set is binarized per batch by Philox(1, [b, 9])."""
        out = []
        with torch.no_grad():
            for b, s in enumerate(range(0, len(images), 100)):
                chunk = images[s:s + 100][:, None]
                x = chunk.astype(np.float32) if binary else D.dynamic_binarized(chunk, 1, [b, 9])
                out.append(model.encode(torch.from_numpy(x).to(device))[0].cpu().numpy())
        return np.concatenate(out)

    t0 = time.perf_counter()
    tr = embed(train.images[:n_train], False)
    te = embed(data.test.images[:n_test], True)
    error = knn_error(tr, train.labels[:n_train], te, data.test.labels[:n_test], f["k"])
    print(json.dumps({"command": "knn", "preset": model.config["preset"], "latent_dim": model.latent_dim, "k": f["k"],
                      "train_images": n_train, "test_images": n_test, "test_error": round(error, 4),
                      "seconds": round(time.perf_counter() - t0, 2), "data": data.description, "device": device}), flush=True)


# ---- entry --------------------------------------------------------------------------------------------------

def _device(f: dict) -> str:
    from .distributed import _device_for
    return _device_for(f["device"], 0)


def train_command(f: dict) -> int:
    from .distributed import train
    if f["nproc"] < 1:
        raise UsageError("train: --nproc must be at least 1")
    if (f.get("max-seconds") or 0) < 0:
        raise UsageError(f"train: --max-seconds must be 0 (no limit) or positive, not {f['max-seconds']}")
    if f.get("batch") is not None and f["batch"] % f["nproc"] != 0:
        raise UsageError(f"train: --batch {f['batch']} must be a multiple of --nproc {f['nproc']} (each process takes an equal shard of every batch)")
    return train(f, f["nproc"], f["device"])


RUN = {"train": train_command, "eval": eval_command, "sample": sample_command, "knn": knn_command}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("--help", "-h", "help"):
        print(main_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"pixelvae_torch: unknown command '{name}'\n\n{main_usage()}", file=sys.stderr)
        return 2
    summary, spec = COMMANDS[name]
    from .checkpoint import CheckpointError
    from .train import UsageError as TrainUsageError
    try:
        f = parse_flags(name, rest, spec)
        if f.get("help"):
            print(usage(name, summary, spec))
            return 0
        code = RUN[name](f)
        return code or 0
    except (UsageError, TrainUsageError) as error:
        print(f"pixelvae_torch {error}", file=sys.stderr)
        return 2
    except (CheckpointError, D.DataError, ValueError, RuntimeError, OSError) as error:
        print(f"pixelvae_torch {name}: {error}", file=sys.stderr)
        return 1
