"""The hierarchical PixelVAE for colour images in plain PyTorch: the twin of src/models/hierarchical.

Same configuration fields and presets (config.ts), the same parameter names, shapes and creation
order (so the same seed gives the same initial values as the TypeScript model), the same batch-norm
running statistics under "buffer/<name>", and the same arithmetic: ELU pre-activation residual blocks
with batch norm, subpixel up-sampling, a 16-d (embedDim) embedding per sub-pixel interleaved by
colour, R->G->B channel-group masks (group = channel index mod C), a 256-way softmax, z2 a vector
and z1 a map with a PixelCNN prior emitting diagonal Gaussians, KL warm-ups, and the documented
departure (docs/departures.md): batch-norm statistics re-estimated over training batches before
evaluation and sampling (the model then runs on the running statistics).

Everything uses PyTorch's own conv2d / autograd; nothing of our WGSL kernels is ported.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .api import TwinModel
from .nn import TsRng, conv_init, conv_mask, linear_init, row_norms

# ---- configuration (config.ts) -------------------------------------------------------------------

HIER_PRESETS = ('tiny', 'small', '32px', '64px')
HIER_PRESET_PREFIX = 'hier-'

_PRESETS: Dict[str, Tuple[dict, dict]] = {
    'tiny': (
        dict(imageSize=8, channels=3, embedDim=4, dims=[6, 8, 8], z1Level=1, latent1=4, latent2=8,
             encoderBlocks=[1], latentBlocks=1, pixelWidth=6, pixelBlocks=1, latentPixelWidth=8,
             inputFilter=3, filter=3, alpha1Iters=0, alpha2Iters=0, betaIters=0, klPenalty=1, bnEps=1e-2),
        dict(batchSize=8, lr=1e-3, steps=200, bnBatches=4),
    ),
    'small': (
        dict(imageSize=32, channels=3, embedDim=16, dims=[48, 48, 64, 96], z1Level=2, latent1=16, latent2=64,
             encoderBlocks=[1, 1], latentBlocks=2, pixelWidth=48, pixelBlocks=2, latentPixelWidth=96,
             inputFilter=5, filter=3, alpha1Iters=2000, alpha2Iters=5000, betaIters=1000, klPenalty=1, bnEps=1e-2),
        dict(batchSize=32, lr=1e-3, steps=5000, bnBatches=50),
    ),
    '32px': (
        dict(imageSize=32, channels=3, embedDim=16, dims=[64, 128, 256, 512], z1Level=2, latent1=64, latent2=512,
             encoderBlocks=[2, 2], latentBlocks=3, pixelWidth=128, pixelBlocks=2, latentPixelWidth=512,
             inputFilter=5, filter=3, alpha1Iters=2000, alpha2Iters=5000, betaIters=1000, klPenalty=1, bnEps=1e-2),
        dict(batchSize=64, lr=1e-3, steps=200000, bnBatches=1000),
    ),
    '64px': (
        dict(imageSize=64, channels=3, embedDim=16, dims=[64, 64, 128, 256, 512], z1Level=2, latent1=64, latent2=512,
             encoderBlocks=[1, 2], latentBlocks=3, pixelWidth=128, pixelBlocks=3, latentPixelWidth=256,
             inputFilter=5, filter=3, alpha1Iters=2000, alpha2Iters=10000, betaIters=1000, klPenalty=1, bnEps=1e-2),
        dict(batchSize=64, lr=1e-3, steps=200000, bnBatches=1000),
    ),
}


class HierConfigError(ValueError):
    pass


def hier_config(preset: str, **overrides) -> dict:
    """A preset's configuration with overrides (the fields of config.ts's HierConfig, camelCase)."""
    if preset not in _PRESETS:
        raise HierConfigError(f'unknown hierarchical preset "{preset}" (one of {", ".join(HIER_PRESETS)})')
    # Fields this version does not know are kept and ignored, as hierConfig does (a newer checkpoint's sizes).
    c = copy.deepcopy(_PRESETS[preset][0])
    c.update(preset=preset, seed=1)
    c.update(copy.deepcopy(overrides))
    validate_hier_config(c)
    return c


def hier_train_defaults(preset: str) -> dict:
    return dict(_PRESETS[preset][1])


def latent_grids(c: dict) -> Tuple[int, int]:
    """Sides of z1's grid and of z2's grid."""
    return c['imageSize'] >> c['z1Level'], c['imageSize'] >> (len(c['dims']) - 1)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())


def validate_hier_config(c: dict) -> None:
    problems: List[str] = []

    def positive(name, v):
        if not _is_int(v) or v < 1:
            problems.append(f'{name} must be a positive integer (got {v})')

    if c.get('preset') not in HIER_PRESETS:
        problems.append(f'unknown preset "{c.get("preset")}"')
    for key in ('imageSize', 'channels', 'embedDim', 'latent1', 'latent2', 'latentBlocks', 'pixelWidth', 'pixelBlocks', 'latentPixelWidth'):
        positive(key, c.get(key))
    dims = c.get('dims')
    if not isinstance(dims, list) or len(dims) < 2:
        problems.append("dims needs at least two resolutions (the image and z2's grid)")
    else:
        for i, d in enumerate(dims):
            positive(f'dims[{i}]', d)
    z1 = c.get('z1Level')
    top = len(dims) - 1 if isinstance(dims, list) else 0
    if not _is_int(z1) or z1 < 1 or z1 > top:
        problems.append(f'z1Level must be in 1..{top} (got {z1})')
    if _is_int(c.get('imageSize')) and top >= 0 and c['imageSize'] % (1 << top) != 0:
        problems.append(f'imageSize {c["imageSize"]} must be divisible by 2^{top} (the z2 grid)')
    eb = c.get('encoderBlocks')
    if not isinstance(eb, list) or len(eb) != z1:
        problems.append(f'encoderBlocks needs {z1} entries (one per level above z1)')
    else:
        for i, b in enumerate(eb):
            if not _is_int(b) or b < 0:
                problems.append(f'encoderBlocks[{i}] must be >= 0 (got {b})')
    for name in ('inputFilter', 'filter'):
        k = c.get(name)
        if not _is_int(k) or k < 1 or k > 7 or k % 2 == 0:
            problems.append(f'{name} must be odd, 1 to 7 (got {k})')
    for key in ('alpha1Iters', 'alpha2Iters', 'betaIters'):
        if not _is_int(c.get(key)) or c[key] < 0:
            problems.append(f'{key} must be a non-negative integer (got {c.get(key)})')
    if not (isinstance(c.get('klPenalty'), (int, float)) and c['klPenalty'] >= 0):
        problems.append(f'klPenalty must be >= 0 (got {c.get("klPenalty")})')
    if not (isinstance(c.get('bnEps'), (int, float)) and c['bnEps'] > 0):
        problems.append(f'bnEps must be > 0 (got {c.get("bnEps")})')
    if problems:
        raise HierConfigError(f'invalid hierarchical model configuration: {"; ".join(problems)}')


def schedule(c: dict, step: int) -> dict:
    """Warm-up weights at a training step (config.ts's schedule)."""
    def ramp(iters):
        return 1.0 if iters <= 0 else min(1.0, (step + 1) / iters)
    alpha1 = ramp(c['alpha1Iters']) * c['klPenalty']
    alpha2 = ramp(c['alpha2Iters']) * alpha1
    sigma_floor = 0.0 if c['betaIters'] <= 0 else 1 - min(1.0, step / c['betaIters'])
    return dict(alpha1=alpha1, alpha2=alpha2, sigmaFloor=sigma_floor)


EVAL_SCHEDULE = dict(alpha1=1.0, alpha2=1.0, sigmaFloor=0.0)

#: Generation levels (model.ts's LEVELS) and their noise streams (NOISE_STREAM: they never overlap).
LEVELS = ('top', 'middle', 'pixels')
NOISE_STREAM = {'z2': 11, 'eps1': 12, 'uniforms': 13}

# ---- initialisation: src/nn/init.ts's generator and initialisers (nn.py), so a seed gives the same model --


def _f32(values, shape) -> torch.Tensor:
    return torch.from_numpy(np.asarray(values, dtype=np.float64).astype(np.float32)).reshape(shape)


def _row_norms(w: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(row_norms(w.numpy(), w.shape[0]))


# ---- layers (src/nn/layers.ts, networks.ts) ------------------------------------------------------

class Builder:
    """Creation context: the seeded generator, the shared batch-norm mode, epsilon, and the names in creation order."""

    def __init__(self, seed: int, eps: float):
        self.rng = TsRng(seed)
        self.bn = {'training': True, 'momentum': 1.0, 'sync': False}
        self.eps = eps
        self.param_names: List[str] = []
        self.buffer_names: List[str] = []


class Conv(nn.Module):
    """Conv2d of layers.ts: weight [out, in, kh, kw] ('weight'), weight-norm gain ('gain'), bias; mask applied after the norm."""

    def __init__(self, b: Builder, name: str, inp: int, out: int, k: int, stride: int = 1, padding=None,
                 mask=None, weight_norm: bool = False, bias: bool = True, he: bool = True):
        super().__init__()
        half = k // 2
        p = [half, half, half, half] if padding is None else ([padding] * 4 if isinstance(padding, int) else list(padding))
        self.pad_tblr = p
        self.stride = stride
        init = _f32(conv_init(out, inp, k, k, he, mask is not None, b.rng), (out, inp, k, k))
        self.weight = nn.Parameter(init)
        b.param_names.append(f'{name}.weight')
        self.gain = None
        if weight_norm:
            self.gain = nn.Parameter(_row_norms(init))
            b.param_names.append(f'{name}.gain')
        self.bias = None
        if bias:
            self.bias = nn.Parameter(torch.zeros(out))
            b.param_names.append(f'{name}.bias')
        m = None if mask is None else conv_mask(mask[0], out, inp, k, k, mask[1])
        self.register_buffer('mask', m, persistent=False)

    def effective_weight(self) -> torch.Tensor:
        w = self.weight
        if self.gain is not None:
            norm = w.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt()
            w = w * (self.gain.view(-1, 1, 1, 1) / norm)
        if self.mask is not None:
            w = w * self.mask
        return w

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        t, bt, l, r = self.pad_tblr
        if t == bt and l == r and t == l:
            y = F.conv2d(x, self.effective_weight(), self.bias, stride=self.stride, padding=t)
        else:
            y = F.conv2d(F.pad(x, (l, r, t, bt)), self.effective_weight(), self.bias, stride=self.stride)
        return y if residual is None else y + residual


class Linear(nn.Module):
    def __init__(self, b: Builder, name: str, inp: int, out: int, weight_norm: bool = False, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(_f32(linear_init(out, inp, b.rng), (out, inp)))
        b.param_names.append(f'{name}.weight')
        self.gain = None
        if weight_norm:
            self.gain = nn.Parameter(_row_norms(self.weight.data))
            b.param_names.append(f'{name}.gain')
        self.bias = None
        if bias:
            self.bias = nn.Parameter(torch.zeros(out))
            b.param_names.append(f'{name}.bias')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if self.gain is not None:
            w = w * (self.gain / w.pow(2).sum(1).sqrt()).unsqueeze(1)
        return F.linear(x, w, self.bias)


class BatchNorm(nn.Module):
    """Batch norm with the biased batch variance; running <- (1 - m) running + m batch (m = 1 overwrites)."""

    def __init__(self, b: Builder, name: str, channels: int):
        super().__init__()
        self.mode = b.bn
        self.eps = b.eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        b.param_names += [f'{name}.gamma', f'{name}.beta']
        self.register_buffer('running_mean', torch.zeros(channels))
        self.register_buffer('running_var', torch.ones(channels))
        b.buffer_names += [f'{name}.running_mean', f'{name}.running_var']

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        axes = [0, 2, 3] if x.dim() == 4 else [0]
        if self.mode['training']:
            if self.mode.get('sync'):
                mu, var = _global_stats(x, axes)
            else:
                mu = x.mean(dim=axes, keepdim=True)
                var = (x - mu).pow(2).mean(dim=axes, keepdim=True)
            centred = x - mu
            normalized = centred * torch.rsqrt(var + self.eps)
            with torch.no_grad():
                m = float(self.mode['momentum'])
                for running, batch in ((self.running_mean, mu), (self.running_var, var)):
                    batch = batch.reshape(-1)
                    if m == 1:
                        running.copy_(batch)
                    else:
                        running.mul_(1 - m).add_(batch * m)
        else:
            normalized = (x - self.running_mean.view(shape)) * torch.rsqrt(self.running_var.view(shape) + self.eps)
        return normalized * self.gamma.view(shape) + self.beta.view(shape)


def _global_stats(x: torch.Tensor, axes: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Batch mean and biased variance over the global batch of a data-parallel step (every rank's shard),
    with gradients flowing across ranks (an autograd all-reduce): so N processes compute the statistics,
    the loss and, after DistributedDataParallel's averaging, the gradients of one process on the whole batch.
    """
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_reduce
    count = torch.tensor([float(x.numel() // x.shape[1])], dtype=x.dtype, device=x.device)
    dist.all_reduce(count)
    mu = all_reduce(x.sum(dim=axes, keepdim=True)) / count
    var = all_reduce((x - mu).pow(2).sum(dim=axes, keepdim=True)) / count
    return mu, var


def _data_parallel() -> bool:
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def depth_to_space(x: torch.Tensor, r: int = 2) -> torch.Tensor:
    """[N, r*r*C, H, W] -> [N, C, H*r, W*r] with y[n, c, h*r+dy, w*r+dx] = x[n, (dy*r+dx)*C + c, h, w] (TF's order)."""
    n, cr, h, w = x.shape
    c = cr // (r * r)
    return x.reshape(n, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, h * r, w * r)


class ResBlock(nn.Module):
    """shortcut(x) + BN(conv2(ELU(conv1(ELU(x))))); 'down': conv2 strided (TF SAME); 'up': conv1 and shortcut subpixel."""

    def __init__(self, b: Builder, name: str, inp: int, out: int, k: int, resample: Optional[str] = None):
        super().__init__()
        half = k // 2
        self.resample = resample
        if resample == 'down':
            self.conv1 = Conv(b, f'{name}.conv1', inp, inp, k)
            self.conv2 = Conv(b, f'{name}.conv2', inp, out, k, stride=2, padding=[max(0, half - 1), half, max(0, half - 1), half], bias=False)
            self.shortcut = Conv(b, f'{name}.shortcut', inp, out, 1, stride=2, padding=0, weight_norm=True, he=False)
        elif resample == 'up':
            self.conv1 = Conv(b, f'{name}.conv1', inp, 4 * out, k)
            self.conv2 = Conv(b, f'{name}.conv2', out, out, k, bias=False)
            self.shortcut = Conv(b, f'{name}.shortcut', inp, 4 * out, 1, weight_norm=True, he=False)
        else:
            self.conv1 = Conv(b, f'{name}.conv1', inp, out, k)
            self.conv2 = Conv(b, f'{name}.conv2', out, out, k, bias=False)
            self.shortcut = None if inp == out else Conv(b, f'{name}.shortcut', inp, out, 1, weight_norm=True, he=False)
        self.bn = BatchNorm(b, f'{name}.bn', out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.resample == 'up'
        if self.shortcut is None:
            skip = x
        else:
            skip = self.shortcut(x)
            if up:
                skip = depth_to_space(skip)
        h = self.conv1(F.elu(x))
        if up:
            h = depth_to_space(h)
        h = self.conv2(F.elu(h))
        return skip + self.bn(h)


class MaskedResBlock(nn.Module):
    """shortcut(x) + conv2(sigmoid(conv1a(ELU x)) * tanh(conv1b(ELU x))), all masked, weight norm, no batch norm."""

    def __init__(self, b: Builder, name: str, inp: int, out: int, k: int, mask):
        super().__init__()
        self.conv1a = Conv(b, f'{name}.conv1a', inp, out, k, mask=mask, weight_norm=True)
        self.conv1b = Conv(b, f'{name}.conv1b', inp, out, k, mask=mask, weight_norm=True)
        self.conv2 = Conv(b, f'{name}.conv2', out, out, k, mask=mask, weight_norm=True)
        self.shortcut = None if inp == out else Conv(b, f'{name}.shortcut', inp, out, 1, mask=mask, weight_norm=True, he=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        a = F.elu(x)
        return self.conv2(torch.sigmoid(self.conv1a(a)) * torch.tanh(self.conv1b(a)), residual=skip)


class _Tree(nn.Module):
    """A container whose attribute path is a checkpoint name's prefix (enc1.l0.res0 ...)."""


def _attach(root: nn.Module, dotted: str, module: nn.Module) -> nn.Module:
    parts = dotted.split('.')
    node = root
    for p in parts[:-1]:
        if p not in node._modules:
            node.add_module(p, _Tree())
        node = node._modules[p]
    node.add_module(parts[-1], module)
    return module


# ---- the model (model.ts) ------------------------------------------------------------------------

class HierarchicalPixelVae(TwinModel):
    """
    The TwinModel of the hierarchical presets. Batch norm: losses() with a training step uses batch
    statistics and overwrites the running ones (momentum 1, the TypeScript trainer's steps);
    losses(step=None), is_nll, encode and sampling use the running statistics (re-estimate them
    first with before_eval, as the TypeScript does before evaluation and sampling).
    """

    dataset = 'colour'
    clip = ('global_norm', 5.0)

    def __init__(self, config: dict):
        super().__init__()
        validate_hier_config(config)
        self.config = c = dict(config)
        b = Builder(int(c['seed']), float(c['bnEps']))
        self.bn = b.bn
        k = c['filter']
        dims = c['dims']
        top = len(dims) - 1
        z1l = c['z1Level']
        g1, g2 = latent_grids(c)
        C = c['channels']
        E = c['embedDim']
        self.g1, self.g2 = g1, g2

        self.embedding = nn.Parameter(_f32(b.rng.normals(256 * E), (256, E)))
        b.param_names.append('embedding')

        def add(name, module):
            return _attach(self, name, module)

        def keep(attr, module):
            # A shortcut to a module already registered under its checkpoint path (not registered twice).
            object.__setattr__(self, attr, module)
            return module

        # Enc1
        keep('enc1_input', add('enc1.input', Conv(b, 'enc1.input', E * C, dims[0], 1, weight_norm=True)))
        self.enc1_blocks: List[nn.Module] = []
        for level in range(z1l):
            for i in range(c['encoderBlocks'][level]):
                self.enc1_blocks.append(add(f'enc1.l{level}.res{i}', ResBlock(b, f'enc1.l{level}.res{i}', dims[level], dims[level], k)))
            self.enc1_blocks.append(add(f'enc1.l{level}.down', ResBlock(b, f'enc1.l{level}.down', dims[level], dims[level + 1], k, 'down')))
        d = dims[z1l]
        for i in range(c['latentBlocks']):
            self.enc1_blocks.append(add(f'enc1.l{z1l}.res{i}', ResBlock(b, f'enc1.l{z1l}.res{i}', d, d, k)))
        keep('enc1_out', add('enc1.out', Conv(b, 'enc1.out', d, 2 * c['latent1'], 1, weight_norm=True, he=False)))

        # Enc2
        self.enc2_blocks: List[nn.Module] = []
        for level in range(z1l, top):
            for i in range(c['latentBlocks']):
                self.enc2_blocks.append(add(f'enc2.l{level}.res{i}', ResBlock(b, f'enc2.l{level}.res{i}', dims[level], dims[level], k)))
            self.enc2_blocks.append(add(f'enc2.l{level}.down', ResBlock(b, f'enc2.l{level}.down', dims[level], dims[level + 1], k, 'down')))
        for i in range(c['latentBlocks']):
            self.enc2_blocks.append(add(f'enc2.l{top}.res{i}', ResBlock(b, f'enc2.l{top}.res{i}', dims[top], dims[top], k)))
        self.flat = dims[top] * g2 * g2
        keep('enc2_out', add('enc2.out', Linear(b, 'enc2.out', self.flat, 2 * c['latent2'], weight_norm=True)))

        # Dec2's trunk
        keep('dec2_input', add('dec2.input', Linear(b, 'dec2.input', c['latent2'], self.flat, weight_norm=True)))
        self.dec2_blocks: List[nn.Module] = []
        for i in range(c['latentBlocks']):
            self.dec2_blocks.append(add(f'dec2.l{top}.res{i}', ResBlock(b, f'dec2.l{top}.res{i}', dims[top], dims[top], k)))
        for level in range(top, z1l, -1):
            self.dec2_blocks.append(add(f'dec2.l{level}.up', ResBlock(b, f'dec2.l{level}.up', dims[level], dims[level - 1], k, 'up')))
            for i in range(c['latentBlocks']):
                self.dec2_blocks.append(add(f'dec2.l{level - 1}.res{i}', ResBlock(b, f'dec2.l{level - 1}.res{i}', dims[level - 1], dims[level - 1], k)))

        # The latent PixelCNN (one group: a position's channels are predicted jointly)
        w = c['latentPixelWidth']
        mb = ('B', 1)
        keep('lat_input', add('dec2.pix.input', Conv(b, 'dec2.pix.input', c['latent1'], d, c['inputFilter'], mask=('A', 1), weight_norm=True, he=False)))
        self.lat_blocks = [
            add('dec2.pix.res0', MaskedResBlock(b, 'dec2.pix.res0', 2 * d, w, k, mb)),
            add('dec2.pix.res1', MaskedResBlock(b, 'dec2.pix.res1', w, w, k, mb)),
            add('dec2.pix.res2', MaskedResBlock(b, 'dec2.pix.res2', w, w, 1, mb)),
        ]
        keep('lat_out', add('dec2.pix.out', Conv(b, 'dec2.pix.out', w, 2 * c['latent1'], 1, mask=mb, weight_norm=True, he=False)))

        # Dec1's trunk
        keep('dec1_input', add('dec1.input', Conv(b, 'dec1.input', c['latent1'], d, 1, weight_norm=True)))
        self.dec1_blocks: List[nn.Module] = []
        for i in range(c['latentBlocks']):
            self.dec1_blocks.append(add(f'dec1.l{z1l}.res{i}', ResBlock(b, f'dec1.l{z1l}.res{i}', d, d, k)))
        for level in range(z1l, 0, -1):
            self.dec1_blocks.append(add(f'dec1.l{level}.up', ResBlock(b, f'dec1.l{level}.up', dims[level], dims[level - 1], k, 'up')))
            for i in range(c['encoderBlocks'][level - 1]):
                self.dec1_blocks.append(add(f'dec1.l{level - 1}.res{i}', ResBlock(b, f'dec1.l{level - 1}.res{i}', dims[level - 1], dims[level - 1], k)))

        # The pixel PixelCNN (colour groups: channel index mod C)
        mc = ('B', C)
        keep('pix_input', add('dec1.pix.input', Conv(b, 'dec1.pix.input', E * C, dims[0], c['inputFilter'], mask=('A', C), weight_norm=True, he=False)))
        self.pix_blocks = [add('dec1.pix.res0', MaskedResBlock(b, 'dec1.pix.res0', 2 * dims[0], c['pixelWidth'], k, mc))]
        for i in range(1, c['pixelBlocks']):
            self.pix_blocks.append(add(f'dec1.pix.res{i}', MaskedResBlock(b, f'dec1.pix.res{i}', c['pixelWidth'], c['pixelWidth'], k, mc)))
        keep('pix_out', add('dec1.pix.out', Conv(b, 'dec1.pix.out', c['pixelWidth'], 256 * C, 1, mask=mc, weight_norm=True, he=False)))

        self.param_names = list(b.param_names)
        self.buffer_names = list(b.buffer_names)
        named = dict(self.named_parameters())
        missing = [n for n in self.param_names if n not in named]
        if missing or len(named) != len(self.param_names):
            raise AssertionError(f'parameter naming out of step with networks.ts: {missing[:5]}')

    # -- shapes ----------------------------------------------------------------------------------------

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        c = self.config
        return c['channels'], c['imageSize'], c['imageSize']

    @property
    def z1_shape(self) -> Tuple[int, int, int]:
        return self.config['latent1'], self.g1, self.g1

    @property
    def dims_per_image(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    # -- checkpoint state ------------------------------------------------------------------------------

    def state_tensors(self) -> Dict[str, torch.Tensor]:
        """Parameters then "buffer/<name>" batch-norm statistics, in the TypeScript model's order."""
        params = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        out = {n: params[n] for n in self.param_names}
        for n in self.buffer_names:
            out[f'buffer/{n}'] = buffers[n]
        return out

    def load_state_tensors(self, tensors: Dict[str, torch.Tensor], where: str = 'checkpoint') -> None:
        """Copies named tensors in; checks every name and shape first so a mismatch changes nothing."""
        mine = self.state_tensors()
        problems = []
        for name, t in mine.items():
            v = tensors.get(name)
            if v is None:
                problems.append(f'missing {name}')
            elif tuple(v.shape) != tuple(t.shape):
                problems.append(f'{name}: shape {list(v.shape)}, model has {list(t.shape)}')
        extra = [n for n in tensors if n not in mine]
        problems += [f'unexpected {n}' for n in extra]
        if problems:
            shown = '; '.join(problems[:8]) + (f'; ... ({len(problems)} in all)' if len(problems) > 8 else '')
            raise ValueError(f'{where} does not fit hier-{self.config["preset"]}: {shown}')
        with torch.no_grad():
            for name, t in mine.items():
                t.copy_(torch.as_tensor(tensors[name]).to(t.device, t.dtype))

    # -- the TwinModel protocol (api.py) ---------------------------------------------------------------

    @property
    def preset(self) -> str:
        return HIER_PRESET_PREFIX + self.config['preset']

    def checkpoint_tensors(self) -> 'OrderedDict[str, torch.Tensor]':
        return OrderedDict(self.state_tensors())

    def _draw(self, shape, generator: Optional[torch.Generator], normal: bool = True) -> torch.Tensor:
        device = self.embedding.device
        gen_device = generator.device if generator is not None else device
        t = (torch.randn if normal else torch.rand)(tuple(shape), generator=generator, device=gen_device)
        return t.to(device)

    def _posterior_noise(self, rows: int, noise, generator):
        if noise is not None:
            return noise['eps1'], noise['eps2']
        return self._draw((rows, *self.z1_shape), generator), self._draw((rows, self.config['latent2']), generator)

    def losses(self, x: torch.Tensor, step: Optional[int], noise=None, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """'loss' as the TypeScript trainer minimises; per-image 'recon', 'kl1', 'kl2', 'kl', 'neg_elbo' in nats per dimension."""
        s = EVAL_SCHEDULE if step is None else schedule(self.config, step)
        was = dict(self.bn)
        # A training step of a data-parallel run (every rank calls this) normalises by the global batch's statistics.
        sync = step is not None and torch.is_grad_enabled() and _data_parallel()
        self.bn.update(training=step is not None, momentum=1.0, sync=sync)
        try:
            eps1, eps2 = self._posterior_noise(x.shape[0], noise, generator)
            e = self._elements(x, eps1, eps2, s['sigmaFloor'])
        finally:
            self.bn.update(was)
        dims = self.dims_per_image
        t = self._terms_from(e, x.shape[0], s)
        recon = e['ce'].flatten(1).sum(1) / dims
        kl1 = e['kl1'].flatten(1).sum(1) / dims
        kl2 = e['kl2'].sum(1) / dims
        return dict(loss=t['loss'], recon=recon, kl1=kl1, kl2=kl2, kl=kl1 + kl2, neg_elbo=recon + kl1 + kl2,
                    reconstruction=t['reconstruction'], kl1_mean=t['kl1'], kl2_mean=t['kl2'])

    @torch.no_grad()
    def is_nll(self, x: torch.Tensor, k: int, noise=None, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Per-image nats (divide by dims_per_image for nats/dim): 'nll' (IS, k samples), 'neg_elbo', 'kl', 'recon'. Running BN statistics."""
        was = self.bn['training']
        self.bn['training'] = False
        try:
            eps1, eps2 = self._posterior_noise(k * x.shape[0], noise, generator)
            r = self.importance_nll(x, k, eps1, eps2)
        finally:
            self.bn['training'] = was
        return dict(nll=r['nll'], neg_elbo=r['negElbo'], kl=r['kl'], recon=r['negElbo'] - r['kl'], negElboSameSamples=r['negElboSameSamples'])

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        c, h, w = self.image_shape
        z2 = self._draw((n, self.config['latent2']), generator)
        eps1 = self._draw((n, *self.z1_shape), generator)
        uniforms = self._draw((n, c, h, w), generator, normal=False)
        return self.generate(eps1, uniforms, z2=z2)['images'].to(torch.uint8)

    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """q(z2|x)'s mean and log sigma [B, L2] (running statistics)."""
        q = self.encode_levels(x)
        return q['mu2'], q['logSigma2']

    def before_eval(self, train_batches, generator: Optional[torch.Generator] = None) -> None:
        """
        Re-estimates the batch-norm statistics as the exact average over the given training batches: each
        item uint8 x [B, 3, S, S], or (x, {'eps1', 'eps2'}) to give the posterior noise (the TypeScript's
        reestimateBatchNorm draws posteriorNoise(B, seed, [s, 5])); otherwise it is drawn from `generator`.
        """
        if generator is None:
            generator = torch.Generator(device=self.embedding.device.type).manual_seed(int(self.config['seed']) + 5 * 7919)
        device = self.embedding.device

        def batches():
            for item in train_batches:
                x, noise = item if isinstance(item, tuple) else (item, None)
                x = torch.as_tensor(x).to(device)
                eps1, eps2 = self._posterior_noise(x.shape[0], noise, generator)
                yield x, eps1.to(device), eps2.to(device)

        self.reestimate_batch_norm(batches())

    # -- networks --------------------------------------------------------------------------------------

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """u8/long [B, C, H, W] -> [B, E*C, H, W], channel e*C + c."""
        n, c, h, w = x.shape
        e = self.config['embedDim']
        return self.embedding[x.long()].permute(0, 4, 1, 2, 3).reshape(n, e * c, h, w)

    def posterior(self, x: torch.Tensor):
        h1 = self.enc1_input(self.embed(x))
        for blk in self.enc1_blocks:
            h1 = blk(h1)
        mu1, log_sigma1 = split_posterior(self.enc1_out(h1))
        h = h1
        for blk in self.enc2_blocks:
            h = blk(h)
        mu2, log_sigma2 = split_posterior(self.enc2_out(h.reshape(h.shape[0], self.flat)))
        return mu1, log_sigma1, mu2, log_sigma2

    def prior_features(self, z2: torch.Tensor) -> torch.Tensor:
        dims = self.config['dims']
        h = self.dec2_input(z2.clamp(-50, 50)).reshape(z2.shape[0], dims[-1], self.g2, self.g2)
        for blk in self.dec2_blocks:
            h = blk(h)
        return h * 0.5

    def prior_raw(self, z1: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.lat_input(z1), features], 1)
        for blk in self.lat_blocks:
            h = blk(h)
        return self.lat_out(h)

    def prior_params(self, z1: torch.Tensor, features: torch.Tensor, sigma_floor: float = 0.0):
        raw = self.prior_raw(z1, features)
        l = self.config['latent1']
        mu = 2 * F.softsign(raw[:, :l] * 0.5)
        sigma = F.softsign(raw[:, l:]) * 0.5 + 0.5
        if sigma_floor > 0:
            sigma = torch.maximum(sigma, torch.tensor(float(sigma_floor), dtype=sigma.dtype, device=sigma.device))
        return mu, torch.log(sigma)

    def pixel_features(self, z1: torch.Tensor) -> torch.Tensor:
        h = self.dec1_input(z1.clamp(-50, 50))
        for blk in self.dec1_blocks:
            h = blk(h)
        return h * 0.5

    def pixel_logits(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Logits [B, 256, C, H, W] of every sub-pixel given the image (or canvas) x."""
        h = torch.cat([self.pix_input(self.embed(x)), features], 1)
        for blk in self.pix_blocks:
            h = blk(h)
        logits = self.pix_out(h)
        n, _, hh, ww = logits.shape
        return logits.reshape(n, 256, self.config['channels'], hh, ww)

    # -- the objective ---------------------------------------------------------------------------------

    def _elements(self, x: torch.Tensor, eps1: torch.Tensor, eps2: torch.Tensor, sigma_floor: float) -> Dict[str, torch.Tensor]:
        """Element-wise pieces: cross-entropy [B, C, H, W], KL1 [B, L1, h1, w1], KL2 [B, L2], logits, z1, z2."""
        mu1, ls1, mu2, ls2 = self.posterior(x)
        z1 = mu1 + eps1 * torch.exp(ls1)
        z2 = mu2 + eps2 * torch.exp(ls2)
        pmu, pls = self.prior_params(z1, self.prior_features(z2), sigma_floor)
        logits = self.pixel_logits(x, self.pixel_features(z1))
        return dict(ce=F.cross_entropy(logits, x.long(), reduction='none'), kl1=kl_diag_gaussians(mu1, ls1, pmu, pls),
                    kl2=kl_standard_normal(mu2, ls2), logits=logits, z1=z1, z2=z2)

    def _terms_from(self, e: Dict[str, torch.Tensor], batch: int, s: dict) -> Dict[str, torch.Tensor]:
        dims = self.dims_per_image
        reconstruction = e['ce'].mean()
        kl1 = e['kl1'].sum() / (batch * dims)
        kl2 = e['kl2'].sum() / (batch * dims)
        loss = reconstruction + (kl1 * s['alpha1'] + kl2 * s['alpha2'])
        return dict(loss=loss, reconstruction=reconstruction, kl1=kl1, kl2=kl2)

    def terms(self, x: torch.Tensor, eps1: torch.Tensor, eps2: torch.Tensor, s: dict) -> Dict[str, torch.Tensor]:
        """The negative ELBO terms in nats per dimension (model.ts's terms, the reference's normalisation), in the current BN mode."""
        return self._terms_from(self._elements(x, eps1, eps2, s['sigmaFloor']), x.shape[0], s)

    def per_image(self, x: torch.Tensor, eps1: torch.Tensor, eps2: torch.Tensor, sigma_floor: float = 0.0) -> Dict[str, torch.Tensor]:
        """Per-image nats (not per dimension): reconstruction -log p(x|z1), KL1 and KL2, with the given noise; and the logits."""
        e = self._elements(x, eps1, eps2, sigma_floor)
        return dict(reconstruction=e['ce'].flatten(1).sum(1), kl1=e['kl1'].flatten(1).sum(1), kl2=e['kl2'].sum(1),
                    logits=e['logits'], z1=e['z1'], z2=e['z2'])

    def importance_nll(self, x: torch.Tensor, k: int, eps1: torch.Tensor, eps2: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Per-image IS-NLL in nats with k samples (model.ts's importanceNll): -(logsumexp_k log w_k - log k),
        log w = log p(x|z1) + log p(z1|z2) + log N(z2; 0, I) - log q(z1|x) - log q(z2|x), z ~ q;
        eps1 [k*B, L1, h1, w1], eps2 [k*B, L2] (sample j of image i at row j*B + i). Also the bound with
        the same samples (KLs analytic) and -mean_k log w_k. Runs in the current BN mode.
        """
        batch = x.shape[0]
        mu1, ls1, mu2, ls2 = self.posterior(x)

        def tile(t):
            return t.unsqueeze(0).expand(k, *t.shape).reshape(k * batch, *t.shape[1:])

        mu1, ls1, mu2, ls2, xt = tile(mu1), tile(ls1), tile(mu2), tile(ls2), tile(x)
        z1 = mu1 + eps1 * torch.exp(ls1)
        z2 = mu2 + eps2 * torch.exp(ls2)
        pmu, pls = self.prior_params(z1, self.prior_features(z2), 0.0)
        logits = self.pixel_logits(xt, self.pixel_features(z1))
        log_px = -F.cross_entropy(logits, xt.long(), reduction='none').flatten(1).sum(1)
        zero = torch.zeros((), dtype=z2.dtype, device=z2.device)
        log_pz1 = gaussian_log_density(z1, pmu, pls).flatten(1).sum(1)
        log_qz1 = gaussian_log_density(z1, mu1, ls1).flatten(1).sum(1)
        log_pz2 = gaussian_log_density(z2, zero, zero).sum(1)
        log_qz2 = gaussian_log_density(z2, mu2, ls2).sum(1)
        log_w = (log_px + (log_pz1 - log_qz1) + (log_pz2 - log_qz2)).view(k, batch)
        nll = -(torch.logsumexp(log_w, 0) - math.log(k))
        # The bound with the same samples, KLs analytic: -mean_k log p(x|z1_k) + mean_k KL1(q || p(.|z2_k)) + KL2.
        kl1 = kl_diag_gaussians(mu1, ls1, pmu, pls).flatten(1).sum(1).view(k, batch).mean(0)
        kl2 = kl_standard_normal(mu2[:batch], ls2[:batch]).sum(1)
        kl = kl1 + kl2
        neg_elbo = -log_px.view(k, batch).mean(0) + kl
        return dict(nll=nll, negElbo=neg_elbo, kl=kl, kl1=kl1, kl2=kl2, negElboSameSamples=-log_w.mean(0))

    # -- generation ------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, eps1: Optional[torch.Tensor], uniforms: torch.Tensor, z2: Optional[torch.Tensor] = None,
                 z1: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """
        Top-down generation with running batch-norm statistics: from z2 (z1 drawn position by position,
        z1 = mu + sigma * eps1), or from a given z1; then the pixels in raster and R->G->B order by
        inverse CDF of the softmax with the pre-drawn uniforms (sample_categorical.wgsl's rule).
        """
        was = self.bn['training']
        self.bn['training'] = False
        try:
            c_, h, w = self.image_shape
            n = uniforms.shape[0]
            if z1 is None:
                assert z2 is not None and eps1 is not None
                l1, h1, w1 = self.z1_shape
                z1 = torch.zeros(n, l1, h1, w1, dtype=uniforms.dtype, device=uniforms.device)
                features = self.prior_features(z2)
                l = self.config['latent1']
                r = self._radius(self.config['inputFilter'], 2)
                for p in range(h1 * w1):
                    y, xx = divmod(p, w1)
                    (y0, x0, x1) = _window(y, xx, w1, r)
                    raw = self.prior_raw(z1[:, :, y0:y + 1, x0:x1], features[:, :, y0:y + 1, x0:x1])[:, :, y - y0, xx - x0]
                    mu = 2 * F.softsign(0.5 * raw[:, :l])
                    sigma = 0.5 * (F.softsign(raw[:, l:]) + 1)
                    z1[:, :, y, xx] = mu + sigma * eps1[:, :, y, xx]
            images = torch.zeros(n, c_, h, w, dtype=torch.long, device=uniforms.device)
            features = self.pixel_features(z1)
            r = self._radius(self.config['inputFilter'], self.config['pixelBlocks'])
            for p in range(h * w):
                y, xx = divmod(p, w)
                y0, x0, x1 = _window(y, xx, w, r)
                for ch in range(c_):
                    logits = self.pixel_logits(images[:, :, y0:y + 1, x0:x1], features[:, :, y0:y + 1, x0:x1])[:, :, ch, y - y0, xx - x0]
                    images[:, ch, y, xx] = categorical_inverse_cdf(logits, uniforms[:, ch, y, xx])
            return dict(images=images, z1=z1, z2=z2)
        finally:
            self.bn['training'] = was

    def _radius(self, input_filter: int, blocks_of_filter: int) -> int:
        # How far up, left and right a PixelCNN output reaches: the masked input conv's half width plus
        # two filter-wide convs (conv1a|b, then conv2) per block; the 1x1 layers reach nothing.
        return input_filter // 2 + blocks_of_filter * 2 * (self.config['filter'] // 2)

    @torch.no_grad()
    def encode_levels(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """q(z1|x) and q(z2|x) with running statistics: means and sigmas."""
        was = self.bn['training']
        self.bn['training'] = False
        try:
            mu1, ls1, mu2, ls2 = self.posterior(x)
            return dict(mu1=mu1, sigma1=ls1.exp(), logSigma1=ls1, mu2=mu2, sigma2=ls2.exp(), logSigma2=ls2)
        finally:
            self.bn['training'] = was

    def level_noise(self, rows: int, cols: int, seed: int, vary: Optional[str] = None) -> Dict[str, torch.Tensor]:
        """
        model.ts's levelNoise, draw for draw (the engine's Philox streams [0, 11], [0, 12], [0, 13] of
        `seed`): for a rows x cols grid the level `vary` ('top': z2, 'middle': eps1, 'pixels': the
        uniforms) is drawn per cell and the others once per row, shared by the row's cells; vary=None
        draws everything per cell. So a seed gives the Node CLI's and the app's samples and grids.
        """
        from .data import random_normal, random_uniform
        if vary not in (None,) + LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)} (got {vary!r})")
        n = rows * cols
        c, h, w = self.image_shape
        device = self.embedding.device

        def draw(level, shape, normal, stream):
            per_cell = vary is None or vary == level
            count = n if per_cell else rows
            t = torch.from_numpy((random_normal if normal else random_uniform)((count, *shape), seed, [0, stream]))
            if not per_cell and cols > 1:
                t = t.unsqueeze(1).expand(rows, cols, *shape).reshape(n, *shape)
            return t.to(device)

        return dict(z2=draw('top', (self.config['latent2'],), True, NOISE_STREAM['z2']),
                    eps1=draw('middle', self.z1_shape, True, NOISE_STREAM['eps1']),
                    uniforms=draw('pixels', (c, h, w), False, NOISE_STREAM['uniforms']))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, keep_level: str, eps1: Optional[torch.Tensor], uniforms: torch.Tensor,
                    latent_noise: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """
        model.ts's reconstruct: encode x with running statistics, keep z2 ('top': z1 and the pixels
        regenerated) or z1 ('middle': the pixels regenerated); the kept latent is the posterior mean,
        plus sigma times `latent_noise` when given.
        """
        if keep_level not in ('top', 'middle'):
            raise ValueError(f"keep_level must be 'top' (keep z2) or 'middle' (keep z1), got {keep_level!r}")
        q = self.encode_levels(x)
        mu, log_sigma = (q['mu2'], q['logSigma2']) if keep_level == 'top' else (q['mu1'], q['logSigma1'])
        kept = mu if latent_noise is None else mu + latent_noise * torch.exp(log_sigma)
        if keep_level == 'top':
            return self.generate(eps1, uniforms, z2=kept)
        return self.generate(None, uniforms, z1=kept)

    @torch.no_grad()
    def reestimate_batch_norm(self, batches) -> None:
        """Running statistics <- the exact average over the given (x, eps1, eps2) training batches (forward only)."""
        try:
            for s, (x, eps1, eps2) in enumerate(batches):
                self.bn['training'] = True
                self.bn['momentum'] = 1 / (s + 1)
                self.terms(x, eps1, eps2, EVAL_SCHEDULE)
        finally:
            self.bn['momentum'] = 1.0
            self.bn['training'] = False


def _window(y: int, x: int, width: int, r: int) -> Tuple[int, int, int]:
    """
    Rows y-r..y and columns x-r..x+r (clipped to the image): all a causal output at (y, x) depends on
    through r rows and columns of masked convolutions, so a pass over this window gives the logits of
    (y, x) that a pass over the whole image gives (the image's own borders stay zero-padded), at a
    fraction of the cost: a sample draws one position per pass.
    """
    return max(0, y - r), max(0, x - r), min(width, x + r + 1)


def split_posterior(raw: torch.Tensor):
    """[B, 2K, ...] -> mu, log sigma with sigma = (softsign(raw) + 1) / 2."""
    k = raw.shape[1] // 2
    return raw[:, :k], torch.log(F.softsign(raw[:, k:]) * 0.5 + 0.5)


def kl_diag_gaussians(mu_q, ls_q, mu_p, ls_p):
    ratio = (torch.exp(ls_q * 2) + (mu_q - mu_p).pow(2)) * torch.exp(ls_p * -2)
    return (ls_p - ls_q) + (ratio * 0.5 - 0.5)


def kl_standard_normal(mu, ls):
    return (mu.pow(2) + torch.exp(ls * 2)) * 0.5 - 0.5 - ls


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_log_density(x, mu, ls):
    z2 = (x - mu).pow(2) * torch.exp(ls * -2)
    return (z2 * -0.5 - _HALF_LOG_2PI) - ls


def categorical_inverse_cdf(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The smallest k with sum_{j<=k} softmax_j > u (the last class takes any rounding remainder); logits [N, K]."""
    e = torch.exp(logits - logits.max(1, keepdim=True).values)
    acc = torch.cumsum(e, 1)
    goal = (u * e.sum(1)).unsqueeze(1)
    above = acc > goal
    k = logits.shape[1]
    first = torch.where(above.any(1), above.float().argmax(1), torch.full_like(u, k - 1, dtype=torch.long))
    return first


def bits_per_dim(nats_per_dim: float) -> float:
    return nats_per_dim / math.log(2)


# ---- the family entry points (registry.py) -------------------------------------------------------

PRESETS = HIER_PRESETS


def make_config(preset: str, overrides: Optional[dict] = None) -> dict:
    """hierConfig(preset, overrides): defaults filled in, validated (ValueError with the TypeScript's message)."""
    return hier_config(preset, **dict(overrides or {}))


def build(config: dict) -> HierarchicalPixelVae:
    return HierarchicalPixelVae(config)
