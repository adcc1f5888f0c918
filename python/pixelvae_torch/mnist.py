"""The binarized-MNIST model family in plain PyTorch: the twin of src/models/config.ts, networks.ts and
mnist-model.ts (the six presets of the paper's Table 1).

Same configuration fields (camelCase, as in checkpoints), the same parameter names, shapes and
creation order, so a seed gives the same initial values as the TypeScript model; the same masks,
gates, weight norm and initialisation (nn.py); Bernoulli likelihood on logits; the analytic KL to
N(0, I); the loss mean(reconstruction + alpha * KL) with alpha = min(1, step / klWarmupSteps) (0 at
step 0; 1 when the warm-up is 0); the importance-sampled NLL as importanceNll computes it. Departures
from the authors' code (docs/departures.md) are mirrored: transposed-conv init scaled by the stride
(nn.py) and the tanh of gated-pixelvae's decoder features.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .api import TwinModel
from .safetensors import js_number
from .nn import GateConditioning, ParamTree, TsRng, gate, named_parameters_in_order, pad2d

# ---- configuration (config.ts) --------------------------------------------------------------------

MNIST_PRESETS = ('conv-vae', 'pixelcnn', 'gated-pixelcnn', 'pixelvae', 'gated-pixelvae', 'gated-pixelvae-cond')
PRESETS = MNIST_PRESETS  # the registry's name for them
PRESET_PREFIX = 'mnist-'

CONFIG_KEYS = ('preset', 'imageSize', 'latentDim', 'pixelLayers', 'pixelWidth', 'filterSize', 'inputFilterSize',
               'outputWidth', 'encoderDims', 'decoderDims', 'klWarmupSteps', 'weightNorm', 'featureNorm', 'seed')
FEATURE_NORMS = ('tanh', 'rms-tanh')
# mnist-model.ts FEATURE_RMS_EPS
FEATURE_RMS_EPS = 1e-6

_BASE = dict(imageSize=28, latentDim=16, pixelLayers=12, pixelWidth=16, filterSize=5, inputFilterSize=7, outputWidth=32,
             encoderDims=[32, 32, 64, 64], decoderDims=[64, 64, 32], klWarmupSteps=10000, weightNorm=True,
             featureNorm='tanh', seed=1)

_TINY = dict(imageSize=8, latentDim=4, pixelLayers=2, pixelWidth=4, filterSize=3, inputFilterSize=3, outputWidth=6,
             encoderDims=[4, 4, 6, 6], decoderDims=[6, 6, 4], klWarmupSteps=0)


class MnistConfigError(ValueError):
    pass


def has_latent(preset: str) -> bool:
    return preset not in ('pixelcnn', 'gated-pixelcnn')


def has_pixelcnn(preset: str) -> bool:
    return preset != 'conv-vae'


def mnist_config(preset: str, **overrides) -> dict:
    """The paper-size configuration of a preset, with overrides (mnistConfig; as there, fields it does
    not know are kept, so a checkpoint's sizes go back out unchanged)."""
    c = copy.deepcopy(_BASE)
    c['preset'] = preset
    c.update(copy.deepcopy(overrides))
    validate_config(c)
    # JSON may carry 12.0 for 12; the layers need Python ints.
    for key in ('imageSize', 'latentDim', 'pixelLayers', 'pixelWidth', 'filterSize', 'inputFilterSize', 'outputWidth'):
        c[key] = int(c[key])
    for key in ('encoderDims', 'decoderDims'):
        c[key] = [int(d) for d in c[key]]
    return c


def make_config(preset: str, overrides: Optional[dict] = None) -> dict:
    """The registry's entry point: mnist_config(preset, **overrides)."""
    return mnist_config(preset, **dict(overrides or {}))


def build(config: dict) -> 'MnistModel':
    """The registry's entry point: a fresh model of a full config (initialised from config['seed'])."""
    return MnistModel(config)


def tiny_config(preset: str, **overrides) -> dict:
    """The tests' tiny configuration (tinyConfig)."""
    return mnist_config(preset, **{**copy.deepcopy(_TINY), **overrides})


def _js(v) -> str:
    """A value as JavaScript's template literal writes it (the TypeScript messages embed values so)."""
    if v is None:
        return 'undefined'
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (int, float)):
        return js_number(v)
    if isinstance(v, (list, tuple)):
        return ','.join('' if e is None else _js(e) for e in v)
    if isinstance(v, dict):
        return '[object Object]'
    return str(v)


def _is_int(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def validate_config(c: dict) -> None:
    """validateConfig, message for message: every problem in one error. One check more: the width
    lists must have their lengths (the TypeScript would fail later, less clearly)."""
    problems: List[str] = []
    preset = c.get('preset')
    if preset not in MNIST_PRESETS:
        problems.append(f'unknown preset "{_js(preset)}" (one of {", ".join(MNIST_PRESETS)})')

    def positive(name, v):
        if not _is_int(v) or v < 1:
            problems.append(f'{name} must be a positive integer (got {_js(v)})')

    for key in ('imageSize', 'latentDim', 'pixelWidth', 'outputWidth'):
        positive(key, c.get(key))
    if not _is_int(c.get('pixelLayers')) or c['pixelLayers'] < 0:
        problems.append(f'pixelLayers must be >= 0 (got {_js(c.get("pixelLayers"))})')
    for key in ('filterSize', 'inputFilterSize'):
        k = c.get(key)
        if not _is_int(k) or k < 1 or k > 7 or k % 2 == 0:
            problems.append(f'{key} must be odd, 1 to 7 (got {_js(k)})')
    size = c.get('imageSize')
    if has_latent(preset) and isinstance(size, (int, float)) and not isinstance(size, bool) and size % 4 != 0:
        problems.append(f'imageSize must be a multiple of 4 for latent models (got {_js(size)})')
    if c.get('featureNorm') not in FEATURE_NORMS:
        problems.append(f'featureNorm must be one of {", ".join(FEATURE_NORMS)} (got {_js(c.get("featureNorm"))})')
    for key, n in (('encoderDims', 4), ('decoderDims', 3)):
        dims = c.get(key)
        if not isinstance(dims, (list, tuple)) or len(dims) != n:
            problems.append(f'{key} must be a list of {n} positive integers (got {_js(dims)})')
        else:
            for i, d in enumerate(dims):
                positive(f'{key}[{i}]', d)
    if problems:
        raise MnistConfigError(f'invalid model configuration: {"; ".join(problems)}')


def encoder_sizes(image_size: int) -> dict:
    """Spatial sizes through the encoder: s -> s/2 -> s/4 (padded to even) -> ceil(s/8)."""
    half = image_size // 2
    quarter = image_size // 4
    quarter_padded = quarter + (quarter % 2)
    return dict(half=half, quarter=quarter, quarterPadded=quarter_padded, eighth=quarter_padded // 2)


# ---- networks (networks.ts) -------------------------------------------------------------------------


class Encoder:
    """Conv encoder: 8 ReLU 3x3 convs (2, 4, 6 strided), zero pad 7->8 before the last stride,
    flatten, linear to (mu, log sigma) interleaved."""

    def __init__(self, tree: ParamTree, c: dict):
        d1, d2, d3, d4 = c['encoderDims']
        wn = c['weightNorm']

        def conv(name, cin, cout, stride=1):
            return tree.conv(f'enc.{name}', cin, cout, 3, stride=stride, weight_norm=wn)

        self.convs = [conv('1', 1, d1), conv('2', d1, d2, 2), conv('3', d2, d2), conv('4', d2, d3, 2), conv('5', d3, d3),
                      conv('6', d3, d4, 2), conv('7', d4, d4), conv('8', d4, d4)]
        self.sizes = encoder_sizes(c['imageSize'])
        self.latent_dim = c['latentDim']
        self.out = tree.linear('enc.out', d4 * self.sizes['eighth'] ** 2, 2 * c['latentDim'], weight_norm=wn)

    def __call__(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = x
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            if i == 3 and self.sizes['quarter'] != self.sizes['quarterPadded']:
                h = pad2d(h, (0, 1, 0, 1))  # bottom and right, as the reference
        stats = self.out(h.reshape(x.shape[0], -1))
        return stats[:, 0::2], stats[:, 1::2]


class UpsamplingDecoder:
    """Linear -> ReLU convs and three x2 transposed convs -> feature maps [B, D, S, S]."""

    def __init__(self, tree: ParamTree, c: dict):
        d0, d1, d2 = c['decoderDims']
        wn = c['weightNorm']
        self.sizes = encoder_sizes(c['imageSize'])
        self.d0 = d0
        self.fc = tree.linear('dec.fc', c['latentDim'], d0 * self.sizes['eighth'] ** 2, weight_norm=wn)

        def conv(name, cin, cout):
            return tree.conv(f'dec.{name}', cin, cout, 3, weight_norm=wn)

        def deconv(name, cin, cout):  # the reference's Deconv2D has no weight norm
            return tree.deconv(f'dec.{name}', cin, cout, 3, stride=2, padding=1, output_padding=1)

        # Creation order of networks.ts: the five convs, then the three deconvs.
        self.convs = [conv('conv1', d0, d0), conv('conv2', d0, d0), conv('conv3', d1, d1), conv('conv4', d2, d2), conv('conv5', d2, d2)]
        self.deconvs = [deconv('deconv1', d0, d1), deconv('deconv2', d1, d2), deconv('deconv3', d2, d2)]
        self.out_channels = d2

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        e = self.sizes['eighth']
        h = F.relu(self.fc(z)).reshape(z.shape[0], self.d0, e, e)
        h = F.relu(self.convs[0](h))
        h = F.relu(self.convs[1](h))
        h = F.relu(self.deconvs[0](h))
        h = F.relu(self.convs[2](h))
        if self.sizes['quarterPadded'] != self.sizes['quarter']:
            q = self.sizes['quarter']
            h = h[:, :, :q, :q]  # crop 8 -> 7
        h = F.relu(self.deconvs[1](h))
        h = F.relu(self.convs[3](h))
        h = F.relu(self.deconvs[2](h))
        return F.relu(self.convs[4](h))


class GatedStackLayer:
    """One gated layer with vertical and horizontal stacks (no blind spot), networks.ts's
    GatedStackLayer: the k x k 'vstack' conv on a map padded with one more zero row on top gives
    vpre [B, 2P, H+1, W]; rows 1..H gate into the vertical output, rows 0..H-1 (the pre-activation
    shifted down one row) pass a 1x1 conv into the horizontal stack's pre-activation; the 1 x k
    horizontal conv (mask A in the first layer, B after) gates, a 1x1 conv follows, plus the residual."""

    def __init__(self, tree: ParamTree, name: str, cin: int, width: int, k: int, first: bool, residual: bool,
                 latent_dim: Optional[int], wn: bool, vertical_output: bool = True):
        c = k // 2
        p2 = 2 * width
        self.residual = residual
        self.vertical_output = vertical_output
        self.vconv = tree.conv(f'{name}.vstack', cin, p2, k, mask='vstack', weight_norm=wn, padding=(c + 1, c, c, c))
        self.v2h = tree.conv(f'{name}.v2h', p2, p2, 1, weight_norm=wn, padding=(0, -1, 0, 0))
        self.hconv = tree.conv(f'{name}.hstack', cin, p2, (1, k), mask='A' if first else 'B', weight_norm=wn, padding=(0, 0, c, c))
        self.h2h = tree.conv(f'{name}.h2h', width, width, 1, weight_norm=wn)
        self.vcond = GateConditioning(tree, f'{name}.vstack', latent_dim, width, wn) if latent_dim and vertical_output else None
        self.hcond = GateConditioning(tree, f'{name}.hstack', latent_dim, width, wn) if latent_dim else None

    def __call__(self, xv: torch.Tensor, xh: torch.Tensor, z: Optional[torch.Tensor]) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        height = xv.shape[2]
        vpre = self.vconv(xv)  # row r is the vertical stack at image row r - 1
        vout = None
        if self.vertical_output:
            vout = gate(vpre[:, :, 1:height + 1], self.vcond.term(z) if self.vcond is not None and z is not None else None)
        v2h = self.v2h(vpre)  # its padding crops the last row
        hcond = self.hcond.term(z) if self.hcond is not None and z is not None else None
        hgated = self.hconv(xh, pre_residual=v2h, cond=hcond, gate_output=True)
        hout = self.h2h(hgated, residual=xh if self.residual else None)
        return vout, hout


class GatedHead:
    """1x1 conv to 2W and gate (optionally z-conditioned), twice, then a 1x1 conv to one logit."""

    def __init__(self, tree: ParamTree, cin: int, width: int, latent_dim: Optional[int], wn: bool):
        self.out1 = tree.conv('pix.out1', cin, 2 * width, 1, weight_norm=wn)
        self.out2 = tree.conv('pix.out2', width, 2 * width, 1, weight_norm=wn)
        self.out3 = tree.conv('pix.out3', width, 1, 1, weight_norm=wn, he=False)
        self.cond1 = GateConditioning(tree, 'pix.out1', latent_dim, width, wn) if latent_dim else None
        self.cond2 = GateConditioning(tree, 'pix.out2', latent_dim, width, wn) if latent_dim else None

    def __call__(self, h: torch.Tensor, z: Optional[torch.Tensor]) -> torch.Tensor:
        a = self.out1(h, gate_output=True, cond=self.cond1.term(z) if self.cond1 is not None and z is not None else None)
        b = self.out2(a, gate_output=True, cond=self.cond2.term(z) if self.cond2 is not None and z is not None else None)
        return self.out3(b)


class GatedPixelCnn:
    """The gated two-stack PixelCNN decoder (gated-pixelcnn, gated-pixelvae, gated-pixelvae-cond)."""

    def __init__(self, tree: ParamTree, c: dict, cin: int, condition_on_z: bool):
        latent = c['latentDim'] if condition_on_z else None
        p = c['pixelWidth']
        wn = c['weightNorm']
        last = c['pixelLayers']
        self.layers = [GatedStackLayer(tree, 'pix.input', cin, p, c['inputFilterSize'], True, False, latent, wn, last > 0)]
        for i in range(1, last + 1):
            self.layers.append(GatedStackLayer(tree, f'pix.{i}', p, p, c['filterSize'], False, True, latent, wn, i < last))
        # The cond_z_bias head keeps width P; the upsampling variants use outputWidth.
        self.head = GatedHead(tree, p, p if condition_on_z else c['outputWidth'], latent, wn)

    def __call__(self, x: torch.Tensor, z: Optional[torch.Tensor]) -> torch.Tensor:
        v: Optional[torch.Tensor] = x
        h = x
        for layer in self.layers:
            v, h = layer(v, h, z)
        return self.head(h, z)


class MaskedPixelCnn:
    """The blind-spot PixelCNN (pixelcnn, pixelvae): a mask-A conv, residual mask-B ReLU layers
    h + relu(conv(h)), a 1x1 ReLU head to one logit."""

    def __init__(self, tree: ParamTree, c: dict, cin: int):
        p = c['pixelWidth']
        wn = c['weightNorm']
        self.input = tree.conv('pix.input', cin, p, c['inputFilterSize'], mask='A', weight_norm=wn)
        self.layers = [tree.conv(f'pix.{i}', p, p, c['filterSize'], mask='B', weight_norm=wn) for i in range(1, c['pixelLayers'] + 1)]
        self.out1 = tree.conv('pix.out1', p, c['outputWidth'], 1, weight_norm=wn)
        self.out2 = tree.conv('pix.out2', c['outputWidth'], c['outputWidth'], 1, weight_norm=wn)
        self.out3 = tree.conv('pix.out3', c['outputWidth'], 1, 1, weight_norm=wn, he=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.input(x))
        for layer in self.layers:
            h = h + F.relu(layer(h))
        h = F.relu(self.out1(h))
        h = F.relu(self.out2(h))
        return self.out3(h)


# ---- likelihood pieces ----------------------------------------------------------------------------------

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) summed over all axes but the first: softplus(l) - x l, nats per image."""
    return (F.softplus(logits) - x * logits).reshape(logits.shape[0], -1).sum(1)


def kl_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) element-wise."""
    return 0.5 * (mu * mu + torch.exp(2 * log_sigma)) - 0.5 - log_sigma


def gaussian_log_density(x: torch.Tensor, mu, log_sigma) -> torch.Tensor:
    """log N(x; mu, sigma^2) element-wise."""
    return -0.5 * (x - mu) ** 2 * torch.exp(-2 * log_sigma) - HALF_LOG_2PI - log_sigma


# ---- the model (mnist-model.ts) ---------------------------------------------------------------------------


class MnistModel(TwinModel):
    """One model of the MNIST family, implementing the twin protocol (api.py). Parameters are named as
    in our checkpoints; `param_names()` lists them in the TypeScript creation order. Images are
    [B, 1, S, S] binary floats."""

    dataset = 'mnist'
    clip = ('value', 1.0)

    def __init__(self, config: dict):
        super().__init__()
        validate_config(config)
        self.config = copy.deepcopy(config)
        c = self.config
        self.preset = PRESET_PREFIX + c['preset']
        self.image_shape = (1, c['imageSize'], c['imageSize'])
        preset = c['preset']
        tree = ParamTree(self, TsRng(int(c['seed'])))
        self._tree = tree
        self.encoder = Encoder(tree, c) if has_latent(preset) else None
        self.upsampler = UpsamplingDecoder(tree, c) if preset in ('conv-vae', 'pixelvae', 'gated-pixelvae') else None
        features = self.upsampler.out_channels if self.upsampler else 0
        self.gated: Optional[GatedPixelCnn] = None
        self.masked: Optional[MaskedPixelCnn] = None
        self.vae_head = None
        if preset == 'conv-vae':
            # A plain reference: the layer lives in the tree as 'dec.out'; registering it again as a
            # child would add a second name for it to state_dict().
            object.__setattr__(self, 'vae_head', tree.conv('dec.out', features, 1, 1, weight_norm=c['weightNorm'], he=False))
        elif preset == 'pixelcnn':
            self.masked = MaskedPixelCnn(tree, c, 1)
        elif preset == 'pixelvae':
            self.masked = MaskedPixelCnn(tree, c, 1 + features)
        elif preset == 'gated-pixelcnn':
            self.gated = GatedPixelCnn(tree, c, 1, False)
        elif preset == 'gated-pixelvae':
            self.gated = GatedPixelCnn(tree, c, 1 + features, False)
        elif preset == 'gated-pixelvae-cond':
            self.gated = GatedPixelCnn(tree, c, 1, True)
        named_parameters_in_order(self, tree.order)  # every parameter recorded once
        if set(self.state_dict()) != set(tree.order):
            raise RuntimeError('state_dict holds names outside the checkpoint')

    # -- structure ---------------------------------------------------------------------------------
    @property
    def has_latent(self) -> bool:
        return self.encoder is not None

    @property
    def is_autoregressive(self) -> bool:
        return self.vae_head is None

    @property
    def latent_dim(self) -> int:
        return self.config['latentDim']

    @property
    def image_size(self) -> int:
        return self.config['imageSize']

    def param_names(self) -> List[str]:
        """Parameter names in the order the TypeScript model creates them (and checkpoints list them)."""
        return list(self._tree.order)

    def ordered_parameters(self) -> List[Tuple[str, nn.Parameter]]:
        return named_parameters_in_order(self, self._tree.order)

    def checkpoint_tensors(self) -> 'OrderedDict[str, torch.Tensor]':
        """The parameters under their checkpoint names in ParamSet order (no other state)."""
        return OrderedDict(self.ordered_parameters())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    # -- the model ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [B,1,S,S] -> (mu, log sigma), each [B, Z]."""
        if self.encoder is None:
            raise ValueError(f"{self.config['preset']} has no encoder")
        return self.encoder(x)

    def latent_features(self, z: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """What the decoder computes from z alone. Departure (docs/departures.md): gated-pixelvae's
        ReLU features pass a tanh before they join the gated stacks; with 1-4 PixelCNN layers
        the features keep growing until the tanh is flat and z is no longer read (scripts/latent-probe.py);
        featureNorm 'rms-tanh' divides each image's features by their rms first."""
        if self.upsampler is None or z is None:
            return None
        features = self.upsampler(z)
        if self.config['preset'] != 'gated-pixelvae':
            return features
        if self.config['featureNorm'] == 'tanh':
            return torch.tanh(features)
        mean_square = features.pow(2).mean(dim=(1, 2, 3), keepdim=True)
        return torch.tanh(features * torch.rsqrt(mean_square + FEATURE_RMS_EPS))

    def decode(self, x: torch.Tensor, z: Optional[torch.Tensor], features: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits of p(x_i | x_<i, z) for every pixel, [B,1,S,S], given the image (or canvas) x."""
        if features is None:
            features = self.latent_features(z)
        if self.vae_head is not None:
            return self.vae_head(features)
        inp = torch.cat([x, features], 1) if features is not None else x  # image first
        if self.masked is not None:
            return self.masked(inp)
        return self.gated(inp, z if self.config['preset'] == 'gated-pixelvae-cond' else None)

    def forward(self, x: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.decode(x, z)

    def kl_weight(self, step: int) -> float:
        """KL warm-up weight: min(1, step / warmup), 0 at step 0; 1 without warm-up."""
        w = self.config['klWarmupSteps']
        return 1.0 if w <= 0 else min(1.0, step / w)

    def loss(self, x: torch.Tensor, noise: Optional[torch.Tensor], kl_weight: float) -> Dict[str, torch.Tensor]:
        """The training objective: {'loss': mean(reconstruction + kl_weight * kl), 'reconstruction': [B],
        'kl': [B]} in nats; `noise` is N(0, I) [B, Z] for the reparameterisation."""
        batch = x.shape[0]
        z = None
        if self.encoder is not None:
            if noise is None:
                raise ValueError('loss: a latent model needs noise for z')
            mu, log_sigma = self.encoder(x)
            z = mu + noise * torch.exp(log_sigma)
            kl = kl_standard_normal(mu, log_sigma).sum(1)
        else:
            kl = torch.zeros(batch, dtype=x.dtype, device=x.device)
        reconstruction = bernoulli_nll(self.decode(x, z), x)
        total = reconstruction if kl_weight == 0 or self.encoder is None else reconstruction + kl_weight * kl
        return {'loss': total.mean(), 'reconstruction': reconstruction, 'kl': kl}

    def importance_nll(self, x: torch.Tensor, k: int, noise: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Per-image importance-sampled NLL -(logsumexp_k log w_k - log k), log w = log N(z; 0, I) +
        log p(x|z) - log q(z|x); the negative ELBO (reconstruction averaged over the k samples, KL
        analytic); -mean_k log w_k; the KL; and (latent models) the log weights [k, B] themselves.
        `noise` is N(0, I) [k*B, Z] (sample-major)."""
        batch = x.shape[0]
        if self.encoder is None:
            nll = bernoulli_nll(self.decode(x, None), x)
            zeros = torch.zeros(batch, dtype=x.dtype, device=x.device)
            return {'nll': nll, 'neg_elbo': nll, 'neg_elbo_same_samples': nll, 'kl': zeros}
        zd = self.latent_dim
        mu, log_sigma = self.encoder(x)
        eps = noise.reshape(k, batch, zd)
        z = mu[None] + eps * torch.exp(log_sigma)[None]
        x_tiled = x[None].expand(k, *x.shape).reshape(k * batch, *x.shape[1:])
        log_px = -bernoulli_nll(self.decode(x_tiled, z.reshape(k * batch, zd)), x_tiled).reshape(k, batch)
        log_pz = gaussian_log_density(z, 0.0, torch.zeros_like(z)).sum(2)
        log_qz = gaussian_log_density(z, mu[None], log_sigma[None]).sum(2)
        log_w = log_pz - log_qz + log_px
        nll = -(torch.logsumexp(log_w, 0) - math.log(k))
        kl = kl_standard_normal(mu, log_sigma).sum(1)
        return {'nll': nll, 'neg_elbo': -log_px.mean(0) + kl, 'neg_elbo_same_samples': -log_w.mean(0), 'kl': kl,
                'log_w': log_w}

    # -- the twin protocol (api.py) -----------------------------------------------------------------
    def losses(self, x: torch.Tensor, step: Optional[int], noise: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """loss() at the KL weight of `step` (1 when step is None), with 'recon' and 'neg_elbo' (alpha = 1)."""
        if self.encoder is not None and noise is None:
            noise = torch.randn(x.shape[0], self.latent_dim, generator=generator, device=x.device, dtype=x.dtype)
        terms = self.loss(x, noise, 1.0 if step is None else self.kl_weight(step))
        return {'loss': terms['loss'], 'recon': terms['reconstruction'], 'kl': terms['kl'],
                'neg_elbo': terms['reconstruction'] + terms['kl']}

    def is_nll(self, x: torch.Tensor, k: int, noise: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """importance_nll() with 'recon' = neg_elbo - kl; noise [k*B, Z] drawn from `generator` when not given."""
        if self.encoder is not None and noise is None:
            noise = torch.randn(k * x.shape[0], self.latent_dim, generator=generator, device=x.device, dtype=x.dtype)
        out = self.importance_nll(x, k, noise)
        out['recon'] = out['neg_elbo'] - out['kl']
        return out

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """n images: z ~ N(0, I) (latent models), then uniforms [n,1,S,S], both from `generator`."""
        device = self._device()
        s = self.image_size
        z = torch.randn(n, self.latent_dim, generator=generator, device=device) if self.has_latent else None
        uniforms = torch.rand(n, 1, s, s, generator=generator, device=device)
        return self.sample_with(z, uniforms)[0]

    @torch.no_grad()
    def sample_with(self, z: Optional[torch.Tensor], uniforms: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draws images: pixel i is 1 when uniforms[i] < sigmoid(logit_i). `z` [B, Z] (ignored without a
        latent), `uniforms` [B,1,S,S] in [0, 1). Autoregressive models recompute the decoder once per
        pixel in raster order, on the rows up to the pixel's (the reference's sampler; our incremental
        one is a speed trick drawing the same pixels). Returns (images, probs)."""
        batch, _, size, _ = uniforms.shape
        canvas = torch.zeros_like(uniforms)
        probs = torch.zeros_like(uniforms)
        features = self.latent_features(z)
        if not self.is_autoregressive:
            p = torch.sigmoid(self.decode(canvas, z, features))
            return (uniforms < p).to(uniforms.dtype), p
        for pos in range(size * size):
            r, col = divmod(pos, size)
            # Row r's logits see only rows <= r (every mask keeps no row below its centre), so the
            # pass runs on those rows alone: half the work on average, the same logits.
            rows = canvas[:, :, :r + 1]
            logits = self.decode(rows, z, features[:, :, :r + 1] if features is not None else None)
            p = torch.sigmoid(logits[:, :, r, col])
            probs[:, :, r, col] = p
            canvas[:, :, r, col] = (uniforms[:, :, r, col] < p).to(canvas.dtype)
        return canvas, probs
