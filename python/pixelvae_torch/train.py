"""Training and evaluation drivers that mirror src/models/trainer.ts, src/models/hierarchical/trainer.ts
and the CLI loops of src/cli/main.ts / hier.ts.

Each step draws exactly what the TypeScript step draws: the batch from EpochSampler(count, batch,
seed) at that step, MNIST's dynamic binarization Philox(seed, [step, 1]) and noise Philox(seed,
[step, 2]) (hierarchical: noise [step, 3] split in two streams), so a run resumed from a checkpoint,
in either engine, sees the batches and draws it would have seen. Adam is the TF/Lasagne form of
src/engine/optim.ts with its element-wise or global-norm clipping; its moments are saved as
optim/m/<name>, optim/v/<name> with the step count in the config, as the TypeScript saves them.

Distributed: each rank computes its contiguous shard of every global batch (rows
rank*B/N..(rank+1)*B/N, drawing the same random elements a single process draws for those rows);
DistributedDataParallel averages the gradients, which equals the gradient of the global batch mean.
Rank 0 writes checkpoints (temp file + rename).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch

from . import checkpoint as ck
from .api import TwinModel, expected_optim, expected_tensors
from . import data as D
from .registry import build_model, model_from_checkpoint_config


# ---- Adam ------------------------------------------------------------------------------------------

class Adam:
    """src/engine/optim.ts's Adam: step size lr*sqrt(1-b2^t)/(1-b1^t), eps added to sqrt(v); gradients
    clipped element-wise (clip_value) and then scaled by min(1, max_norm / global norm)."""

    def __init__(self, params: List[torch.Tensor], lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, clip_value: float = 0.0, clip_global_norm: float = 0.0):
        if clip_value < 0 or clip_global_norm < 0:
            raise ValueError("Adam: clip bounds must be positive")
        self.params = list(params)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.clip_value, self.clip_global_norm = clip_value, clip_global_norm
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.clip_value > 0:
            grads = [g.clamp(-self.clip_value, self.clip_value) for g in grads]
        if self.clip_global_norm > 0:
            norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).float()
            scale = torch.where(torch.isnan(norm), norm, self.clip_global_norm / torch.maximum(norm, torch.tensor(self.clip_global_norm, device=norm.device)))
            grads = [g * scale for g in grads]
        self.t += 1
        lr_t = self.lr * math.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            p.sub_(lr_t * m / (v.sqrt() + self.eps))

    def restore(self, m: List[np.ndarray], v: List[np.ndarray], t: int) -> None:
        for dst, src in zip(self.m, m):
            dst.copy_(torch.from_numpy(np.ascontiguousarray(src)).reshape(dst.shape))
        for dst, src in zip(self.v, v):
            dst.copy_(torch.from_numpy(np.ascontiguousarray(src)).reshape(dst.shape))
        self.t = t


# ---- checkpoints of a model + optimizer --------------------------------------------------------------

def load_into(model: TwinModel, checkpoint: ck.Checkpoint, optimizer: Optional[Adam] = None) -> None:
    """loadInto / loadHierInto: one check of names, shapes and dtypes (and Adam's m/<name>, v/<name>
    when resuming with saved moments), listing every difference; only then copy anything."""
    with_optim = optimizer is not None and len(checkpoint.optim) > 0
    ck.check_compatible(checkpoint, expected_tensors(model), model.preset, expected_optim(model) if with_optim else None)
    ck.assert_finite(checkpoint)
    with torch.no_grad():
        for name, t in model.checkpoint_tensors().items():
            t.copy_(torch.from_numpy(np.ascontiguousarray(checkpoint.params[name])).to(t.device).reshape(t.shape))
    if with_optim:
        names = model.trainable_names()
        optimizer.restore([checkpoint.optim[f"m/{n}"] for n in names], [checkpoint.optim[f"v/{n}"] for n in names],
                          int(checkpoint.config["optimizer"]["step"]))


def load_checkpoint_model(path: str, device: str = "cpu") -> tuple:
    """Reads, validates and builds the model a checkpoint describes, with its tensors loaded."""
    checkpoint = ck.read_checkpoint(path)
    model = model_from_checkpoint_config(checkpoint.config).to(device)
    load_into(model, checkpoint)
    return model, checkpoint


def state_arrays(model: TwinModel) -> Dict[str, np.ndarray]:
    return {n: t.detach().cpu().contiguous().numpy().astype(np.float32, copy=False) if t.dtype == torch.float32
            else t.detach().cpu().contiguous().numpy() for n, t in model.checkpoint_tensors().items()}


def optim_arrays(model: TwinModel, optimizer: Adam) -> Dict[str, np.ndarray]:
    names = model.trainable_names()
    out = {}
    for n, m in zip(names, optimizer.m):
        out[f"m/{n}"] = m.detach().cpu().numpy()
    for n, v in zip(names, optimizer.v):
        out[f"v/{n}"] = v.detach().cpu().numpy()
    # TypeScript order: m/<name>, v/<name> per parameter.
    ordered = {}
    for n in names:
        ordered[f"m/{n}"] = out[f"m/{n}"]
        ordered[f"v/{n}"] = out[f"v/{n}"]
    return ordered


@dataclass
class RunInfo:
    seed: int
    batch_size: int
    lr: float
    clip: float
    #: MNIST: the fixed valid/test binarization seed. Hierarchical: unused.
    binarization_seed: int = D.DEFAULT_BINARIZATION_SEED
    #: Hierarchical: the data description and split sizes.
    data_description: str = ""
    train_images: int = 0
    held_out_images: int = 0


def checkpoint_config(model: TwinModel, run: RunInfo, step: int, optimizer: Optional[Adam], extra: Optional[dict]) -> dict:
    """The config saveMnistCheckpoint / saveHierCheckpoint write, field for field."""
    t = optimizer.t if optimizer is not None else 0
    if model.dataset == "mnist":
        cfg = {
            "preset": model.preset, "sizes": model.sizes(), "step": step,
            "optimizer": {"name": "adam", "step": t, "lr": run.lr, "clipValue": run.clip, "batchSize": run.batch_size},
            "data": {"dataset": "mnist", "split": {"train": D.MNIST_TRAIN_COUNT, "valid": D.MNIST_VALID_COUNT, "test": D.MNIST_TEST_COUNT},
                     "binarization": D.describe_mnist_data(run.binarization_seed), "binarizationSeed": run.binarization_seed},
            "seed": run.seed,
        }
    else:
        cfg = {
            "preset": model.preset, "sizes": model.sizes(), "step": step,
            "optimizer": {"name": "adam", "step": t, "lr": run.lr, "clipGlobalNorm": run.clip, "batchSize": run.batch_size},
            "data": {"dataset": "colour", "split": {"train": run.train_images, "heldOut": run.held_out_images}, "description": run.data_description},
            "seed": run.seed,
        }
    if extra is not None:
        cfg["extra"] = extra
    return cfg


def save_checkpoint(path: str, model: TwinModel, run: RunInfo, step: int, optimizer: Optional[Adam], extra: Optional[dict] = None) -> None:
    optim = optim_arrays(model, optimizer) if optimizer is not None and optimizer.t > 0 else None
    data = ck.encode_checkpoint(checkpoint_config(model, run, step, optimizer, extra), state_arrays(model), optim)
    ck.write_atomic(path, data)


# ---- what a step draws -----------------------------------------------------------------------------------

HIER_NOISE_STREAM = 3
HIER_EVAL_STREAM = 9
MNIST_EVAL_STREAM = 7


def hier_noise(model: TwinModel, rows: int, seed: int, offset, start_row: int = 0) -> dict:
    """posteriorNoise: eps1 on stream [o0, o1*4+1], eps2 on [o0, o1*4+2], rows start_row.. of the batch."""
    o0, o1 = D.seed_words(offset, "offset")
    l1, h1, w1 = model.z1_shape
    l2 = model.config["latent2"]
    per1 = l1 * h1 * w1
    eps1 = D.random_normal((rows, l1, h1, w1), seed, [o0, (o1 * 4 + 1) & D.M32], start=start_row * per1)
    eps2 = D.random_normal((rows, l2), seed, [o0, (o1 * 4 + 2) & D.M32], start=start_row * l2)
    return {"eps1": torch.from_numpy(eps1), "eps2": torch.from_numpy(eps2)}


def train_batch(model: TwinModel, images: np.ndarray, indices: np.ndarray, seed: int, step: int, lo: int, hi: int, device):
    """(x, noise) of rows lo..hi of the global batch `indices` at `step`, as the TypeScript step draws them."""
    rows = indices[lo:hi]
    if model.dataset == "mnist":
        x = D.dynamic_binarized(images[rows][:, None], seed, [step, D.STREAM_BINARIZE], start_row=lo)
        x = torch.from_numpy(x).to(device)
        noise = None
        if model.has_latent:
            z = model.latent_dim
            noise = torch.from_numpy(D.random_normal((hi - lo, z), seed, [step, D.STREAM_NOISE], start=lo * z)).to(device)
        return x, noise
    x = torch.from_numpy(np.ascontiguousarray(images[rows])).to(device)
    noise = {k: v.to(device) for k, v in hier_noise(model, hi - lo, seed, [step, HIER_NOISE_STREAM], lo).items()}
    return x, noise


# ---- evaluation -------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_mnist(model: TwinModel, bits: np.ndarray, k: int, batch_size: int, seed: int, limit: Optional[int] = None,
                   device="cpu", progress=None) -> dict:
    """trainer.ts evaluate(): -ELBO and IS-NLL (k samples) in nats per image, noise Philox(seed, [b, 7])."""
    count = min(limit if limit is not None else len(bits), len(bits))
    sums = np.zeros(4, dtype=np.float64)
    model.eval()
    for b in range(math.ceil(count / batch_size)):
        start = b * batch_size
        n = min(batch_size, count - start)
        x = torch.from_numpy(bits[start:start + n][:, None].astype(np.float32)).to(device)
        noise = None
        if model.has_latent:
            noise = torch.from_numpy(D.random_normal((k * n, model.latent_dim), seed, [b, MNIST_EVAL_STREAM])).to(device)
        r = model.is_nll(x, k, noise)
        sums += [float(r["neg_elbo"].double().sum()), float(r["nll"].double().sum()),
                 float((r["neg_elbo"] - r["kl"]).double().sum()), float(r["kl"].double().sum())]
        if progress:
            progress(start + n, count)
    model.train()
    return {"images": count, "neg_elbo": sums[0] / count, "nll": sums[1] / count, "k": k,
            "reconstruction": sums[2] / count, "kl": sums[3] / count}


@torch.no_grad()
def evaluate_hier(model: TwinModel, images: np.ndarray, batch_size: int, seed: int, limit: Optional[int] = None, device="cpu",
                  progress=None, k: int = 0) -> dict:
    """evaluateHier: the ELBO bound on held-out images, nats and bits per dimension, one z sample,
    noise posteriorNoise(n, seed, [b, 9]), running batch-norm statistics (call reestimate first)."""
    count = min(limit if limit is not None else len(images), len(images))
    if count < 1:
        raise ValueError("held-out set: no images to evaluate")
    sums = np.zeros(3, dtype=np.float64)
    nll_sum = 0.0
    for b in range(math.ceil(count / batch_size)):
        start = b * batch_size
        n = min(batch_size, count - start)
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + n])).to(device)
        noise = {k: v.to(device) for k, v in hier_noise(model, n, seed, [b, HIER_EVAL_STREAM]).items()}
        r = model.losses(x, None, noise)
        sums += [float(r["recon"].double().sum()), float(r["kl1"].double().sum()), float(r["kl2"].double().sum())]
        if k > 0:
            # IS-NLL (no Node CLI counterpart yet): k posterior samples per image, noise rows k*n of stream [b, 9].
            is_noise = {key: v.to(device) for key, v in hier_noise(model, k * n, seed, [b, HIER_EVAL_STREAM]).items()}
            nll_sum += float(model.is_nll(x, k, is_noise)["nll"].double().sum()) / model.dims_per_image
        if progress:
            progress(start + n, count)
    nats = sums.sum() / count
    out = {"images": count, "bits_per_dim": nats / math.log(2), "nats_per_dim": nats,
           "reconstruction": sums[0] / count, "kl1": sums[1] / count, "kl2": sums[2] / count}
    if k > 0:
        out.update(is_nll_nats_per_dim=nll_sum / count, is_nll_bits_per_dim=nll_sum / count / math.log(2), k=k)
    return out


BN_STREAM = 5


def reestimate_batch_norm(model: TwinModel, images: np.ndarray, batches: int, batch_size: int, seed: int, device="cpu") -> None:
    """reestimateBatchNorm: the exact average over `batches` training batches from EpochSampler(seed),
    each with the noise posteriorNoise(batch, seed, [s, 5]) draws, so it matches the TypeScript's statistics."""
    if model.dataset == "mnist" or batches <= 0:
        return
    batch_size = min(batch_size, len(images))
    sampler = D.EpochSampler(len(images), batch_size, seed)

    def gen():
        for s in range(batches):
            x = torch.from_numpy(np.ascontiguousarray(images[sampler.next()])).to(device)
            noise = hier_noise(model, batch_size, seed, [s, BN_STREAM])
            yield x, noise["eps1"].to(device), noise["eps2"].to(device)

    with torch.no_grad():
        model.reestimate_batch_norm(gen())


# ---- progress ----------------------------------------------------------------------------------------------

def format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "--"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{round(s % 60):02d}s"
    return f"{int(s // 3600)}h{round((s % 3600) / 60):02d}m"


class Progress:
    """src/cli/progress.ts: a bar with rate and ETA on stderr (a line every 5 s when not a terminal)."""

    def __init__(self, label: str, total: int, unit: str = "it", extra_rate=None):
        self.label, self.total, self.unit = label, total, unit
        self.start = time.perf_counter()
        self.last = 0.0
        self.extra_rate = extra_rate  # (factor, unit): also show e.g. images/s

    def update(self, done: int, note: str = "") -> None:
        now = time.perf_counter()
        finished = done >= self.total
        tty = sys.stderr.isatty()
        if not finished and now - self.last < (0.2 if tty else 5.0):
            return
        self.last = now
        elapsed = now - self.start
        rate = done / max(elapsed, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else math.inf
        filled = round(24 * min(done, self.total) / max(self.total, 1))
        bar = "[" + "#" * filled + "." * (24 - filled) + "]"
        extra = ""
        if self.extra_rate:
            factor, unit = self.extra_rate
            extra = f" ({rate * factor:.1f} {unit}/s)"
        line = f"{self.label} {bar} {done}/{self.total} {rate:.{2 if rate < 10 else 0}f} {self.unit}/s{extra} ETA {format_seconds(eta)}"
        if note:
            line += f"  {note}"
        if tty:
            sys.stderr.write(f"\r{line}\x1b[K" + ("\n" if finished else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


# ---- the training run (one rank of it) -----------------------------------------------------------------

class _LossModule(torch.nn.Module):
    """What DistributedDataParallel wraps: forward = the model's training losses."""

    def __init__(self, model: TwinModel):
        super().__init__()
        self.model = model

    def forward(self, x, step, noise):
        return self.model.losses(x, step, noise)


def _log(rank: int, text: str) -> None:
    if rank == 0:
        sys.stderr.write(text)
        sys.stderr.flush()


def build_from_flags(f: dict) -> TwinModel:
    """A fresh model from the train flags (TypeScript flag -> config key mapping of main.ts / hier.ts)."""
    preset = f.get("preset")
    if not preset:
        raise UsageError("train: --preset is required (or --resume a checkpoint)")
    if preset.startswith("hier-"):
        overrides = {"seed": f["init-seed"]}
        if f.get("warmup") is not None:
            overrides.update(alpha1Iters=f["warmup"], alpha2Iters=f["warmup"], betaIters=f["warmup"])
        if f.get("image-size") not in (None, 28):
            overrides["imageSize"] = f["image-size"]
        try:
            return build_model(preset, overrides)
        except ValueError as error:
            raise UsageError(f"train: {error}") from None
    mapping = [("latent", "latentDim"), ("layers", "pixelLayers"), ("width", "pixelWidth"), ("filter", "filterSize"),
               ("input-filter", "inputFilterSize"), ("output-width", "outputWidth"), ("warmup", "klWarmupSteps"),
               ("init-seed", "seed"), ("image-size", "imageSize"), ("feature-norm", "featureNorm")]
    overrides = {key: f[flag] for flag, key in mapping if f.get(flag) is not None}
    for flag, key, count in (("encoder-dims", "encoderDims", 4), ("decoder-dims", "decoderDims", 3)):
        if f.get(flag) is not None:
            parts = str(f[flag]).split(",")
            try:
                values = [int(p) for p in parts]
            except ValueError:
                values = []
            if len(values) != count or any(v < 1 for v in values):
                raise UsageError(f"train: --{flag} expects {count} comma-separated positive integers, got '{f[flag]}'")
            overrides[key] = values
    try:
        return build_model(preset if preset.startswith("mnist-") else "mnist-" + preset, overrides)
    except ValueError as error:
        raise UsageError(f"train: {str(error).replace('mnist-', '') if 'unknown preset' in str(error) else error}") from None


class UsageError(ValueError):
    """A bad command line (exit code 2)."""


def load_train_data(model: TwinModel, f: dict):
    """MNIST (intensities for training, fixed bits for validation) or the colour split."""
    if model.dataset == "mnist":
        return D.load_mnist_split(model.config["imageSize"], f.get("train-limit"), f["binarization-seed"])
    from . import colour_data  # twin-hier's module
    return colour_data.load_colour(f.get("data") or ["demo"], model.config["imageSize"], held_out=f["held-out"], split_seed=f["split-seed"])


def run_train(f: dict, rank: int = 0, world: int = 1, device: str = "cpu") -> dict:
    """One rank of `train`. Returns the summary printed as the JSON line (rank 0)."""
    import torch.distributed as dist

    out = f["out"]
    os.makedirs(out, exist_ok=True)
    resume = None
    if f.get("resume"):
        resume = ck.read_checkpoint(f["resume"])
        model = model_from_checkpoint_config(resume.config)
    else:
        model = build_from_flags(f)
    model = model.to(device)
    is_mnist = model.dataset == "mnist"
    if is_mnist:
        batch = f["batch"] if f.get("batch") is not None else 100
        lr = f["lr"] if f.get("lr") is not None else 1e-3
        clip = f["clip"] if f.get("clip") is not None else 1.0
        steps = f["steps"] if f.get("steps") is not None else 1000
    else:
        from .hier import hier_train_defaults
        d = hier_train_defaults(model.config["preset"])
        batch = f["batch"] if f.get("batch") is not None else d["batchSize"]
        lr = f["lr"] if f.get("lr") is not None else d["lr"]
        clip = f["clip"] if f.get("clip") is not None else 5.0
        steps = f["steps"] if f.get("steps") is not None else d["steps"]
        bn_batches = f["bn-batches"] if f.get("bn-batches") is not None else d["bnBatches"]
    if batch % world != 0:
        raise UsageError(f"train: --batch {batch} must be a multiple of --nproc {world} (each process takes an equal shard of every batch)")
    seed = f["seed"]
    data = load_train_data(model, f)
    train_images = data.train.images if is_mnist else data.train
    held = data.valid.images if is_mnist else data.held_out
    run = RunInfo(seed=seed, batch_size=batch, lr=lr, clip=clip, binarization_seed=f.get("binarization-seed", D.DEFAULT_BINARIZATION_SEED))
    if not is_mnist:
        run.data_description, run.train_images, run.held_out_images = data.description, len(data.train), len(data.held_out)
    params = [model.checkpoint_tensors()[n] for n in model.trainable_names()]
    optimizer = Adam(params, lr=lr, clip_value=clip if is_mnist else 0.0, clip_global_norm=0.0 if is_mnist else clip)
    step = 0
    if resume is not None:
        load_into(model, resume, optimizer)
        step = int(resume.config["step"])
        _log(rank, f"resumed at step {step}\n")
    sampler = D.EpochSampler(len(train_images), batch, seed)
    sampler.seek(step)
    count = sum(p.numel() for p in params)
    _log(rank, f"model {model.preset}: {count} parameters; {world} process(es) on {device}, {batch // world} images each per step\n")
    _log(rank, f"data: {data.description}; training on {len(train_images)} images\n")
    net = _LossModule(model)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        net = DDP(net, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    lo, hi = rank * batch // world, (rank + 1) * batch // world

    log: List[str] = []
    best = math.inf
    last_note = ""
    valid_every = f.get("valid-every", 0) if is_mnist else f.get("eval-every", 0)
    valid_limit = f.get("valid-limit") if is_mnist else f.get("eval-limit")
    log_every = max(1, f.get("log-every", 50))
    save_every = f.get("save-every") or 0
    save_seconds = 60.0 * (f.get("save-minutes") if f.get("save-minutes") is not None else 5.0)
    last_save = time.perf_counter()

    def save(name: str, extra: dict) -> None:
        if rank == 0:
            save_checkpoint(os.path.join(out, name), model, run, step, optimizer, extra)

    def validate() -> None:
        nonlocal best
        if rank == 0:
            if is_mnist:
                r = evaluate_mnist(model, held, 1, min(batch, 100), seed, valid_limit, device)
                value, line = r["neg_elbo"], {"step": step, "valid_neg_elbo": r["neg_elbo"], "valid_kl": r["kl"], "valid_reconstruction": r["reconstruction"]}
                text = f"validation -ELBO {r['neg_elbo']:.3f} nats (KL {r['kl']:.3f})"
            else:
                reestimate_batch_norm(model, train_images, bn_batches, batch, seed + BN_STREAM * 7919 + step, device)
                r = evaluate_hier(model, held, batch, seed, valid_limit, device)
                value, line = r["bits_per_dim"], {"step": step, "held_out_bits_per_dim": r["bits_per_dim"], "reconstruction_nats_per_dim": r["reconstruction"],
                                                  "kl1_nats_per_dim": r["kl1"], "kl2_nats_per_dim": r["kl2"]}
                text = f"held-out {r['bits_per_dim']:.4f} bits/dim"
            log.append(json.dumps(line))
            is_best = value < best
            if is_best:
                best = value
                save("best.safetensors", {"validNegElbo": best} if is_mnist else {"heldOutBitsPerDim": best})
            _log(rank, f"\nstep {step}: {text}{' [best]' if is_best else ''}\n")
        if world > 1:
            dist.barrier()

    end = step + steps
    start_step = step
    progress = Progress("train", steps, "steps", extra_rate=(batch, "images")) if rank == 0 else None
    # The running sums stay on the device: reading each term with float() would wait for the GPU every
    # step, and NCCL's all_reduce only takes CUDA tensors.
    sums = torch.zeros(5, dtype=torch.float64, device=device)
    no_term = torch.zeros((), dtype=torch.float64, device=device)
    max_seconds = float(f.get("max-seconds") or 0)
    stop_flag = torch.zeros(1, dtype=torch.int32, device=device)
    n_sums = 0
    t_train = time.perf_counter()
    model.train()
    while step < end:
        indices = sampler.next()
        x, noise = train_batch(model, train_images, indices, seed, step, lo, hi, device)
        for p in params:
            p.grad = None
        terms = net(x, step, noise)
        terms["loss"].backward()
        optimizer.step()
        step += 1
        with torch.no_grad():
            sums += torch.stack([terms["loss"].double(), terms["recon"].double().mean(), terms["kl"].double().mean(),
                                 terms["kl1"].double().mean() if "kl1" in terms else no_term,
                                 terms["kl2"].double().mean() if "kl2" in terms else no_term])
        n_sums += 1
        if step % log_every == 0 or step == end:
            if world > 1:
                dist.all_reduce(sums)
                sums /= world
            m = (sums / n_sums).tolist()
            sums.zero_()
            n_sums = 0
            if not all(math.isfinite(v) for v in m):
                save("last.safetensors", {"diverged": 1})
                raise RuntimeError(f"training diverged at step {step} (loss {m[0]}); the last checkpoint is in {out}; try a lower --lr")
            rate = (step - start_step) / (time.perf_counter() - t_train)
            if is_mnist:
                log.append(json.dumps({"step": step, "loss": m[0], "reconstruction": m[1], "kl": m[2],
                                       "kl_weight": model.kl_weight(step), "images_per_s": rate * batch}))
            else:
                log.append(json.dumps({"step": step, "loss": m[0], "reconstruction": m[1], "kl1": m[3], "kl2": m[4],
                                       "train_bits_per_dim": (m[1] + m[2]) / math.log(2), "images_per_s": rate * batch}))
            last_note = f"loss {m[0]:.2f} (rec {m[1]:.2f} + KL {m[2]:.2f})"
        if progress:
            progress.update(step - start_step, last_note)
        if (save_every > 0 and step % save_every == 0) or (save_seconds > 0 and time.perf_counter() - last_save >= save_seconds):
            save("last.safetensors", {"validNegElbo": best} if is_mnist else {"heldOutBitsPerDim": best})
            last_save = time.perf_counter()
        if valid_every > 0 and step % valid_every == 0 and step < end:
            validate()
        if max_seconds > 0 and step < end and (world == 1 or step % log_every == 0):
            # A wall-clock budget (a lent GPU's time slice): every process stops at the same step, so with
            # several processes they agree at the log steps, where they synchronise anyway.
            stop_flag.fill_(1 if time.perf_counter() - t_train >= max_seconds else 0)
            if world > 1:
                dist.all_reduce(stop_flag, op=dist.ReduceOp.MAX)
            if int(stop_flag.item()):
                _log(rank, f"\nstopping at step {step}: --max-seconds {max_seconds:g} reached\n")
                break
    seconds = time.perf_counter() - t_train
    # Saved before the final validation too, so a run killed during it (a time slice running out) keeps its steps.
    save("last.safetensors", {"validNegElbo": best} if is_mnist else {"heldOutBitsPerDim": best})
    validate()
    save("last.safetensors", {"validNegElbo": best} if is_mnist else {"heldOutBitsPerDim": best})
    if rank == 0:
        with open(os.path.join(out, "log.jsonl"), "w") as fh:
            fh.write("\n".join(log) + "\n")
    summary = {"command": "train", "preset": model.preset, "params": count, "steps": step,
               ("best_valid_neg_elbo_nats" if is_mnist else "best_held_out_bits_per_dim"): best,
               "seconds": round(seconds, 1), "images_per_s": round((step - start_step) * batch / max(seconds, 1e-9), 1),
               "processes": world, "device": device, "torch": torch.__version__, "data": data.description, "out": out}
    _log(rank, f"done in {format_seconds(seconds)}; checkpoints in {out}\n")
    return summary
