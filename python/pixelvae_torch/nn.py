"""Shared layers of the PyTorch twin, mirroring src/nn (layers.ts, init.ts) and the conv options of
src/engine/ops/conv.ts, built on PyTorch's own conv2d / conv_transpose2d / autograd.

- Initialisation uses the generator of src/nn/init.ts (mulberry32 + Box-Muller), drawn in the same
  order, so a model built from a seed holds the same initial values as the TypeScript one (and so the
  same distributions): He-style uniform conv weights with fans halved under a mask, orthogonal square
  linear maps, LeCun-uniform other linear maps, weight-norm gains equal to the initial row norms,
  zero biases, transposed-conv weights scaled by the stride (docs/departures.md).
- Weight norm is W = g * v / ||v|| per output unit over the whole unmasked v; the mask is applied to
  W afterwards (as our conv kernels skip masked taps), so masked taps still count in the norm.
- Masks: 'A' / 'B' (rows above and the left part of the centre row; the centre tap by colour group:
  input group gi reaches output group go when gi < go for A, gi <= go for B; group = channel mod
  groups) and 'vstack' (rows up to and including the centre). A 1 x k kernel with A/B is the gated
  PixelCNN's horizontal stack.
- Parameter names are those of our checkpoints: a layer named "enc.1" owns "enc.1.weight",
  "enc.1.gain" (weight norm only) and "enc.1.bias". ParamTree places layers in the module tree by
  their dotted names and records the TypeScript creation order (checkpoints list tensors in it).

Layout NCHW, weights [Cout, Cin, kh, kw] (transposed convs [Cin, Cout, k, k]), linear [out, in].
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- the generator of src/nn/init.ts ----------------------------------------------------------------

_GOLDEN = 0x6D2B79F5
_M32 = 0xFFFFFFFF


class TsRng:
    """mulberry32 with Box-Muller normals: bit for bit the Rng of src/nn/init.ts, vectorised with numpy.

    The state advances by a constant per draw, so n draws are computed at once from the state.
    """

    def __init__(self, seed: int):
        self.state = int(seed) & _M32

    def uniforms(self, n: int) -> np.ndarray:
        """The next n uniform draws in [0, 1), float64, in order."""
        if n <= 0:
            return np.zeros(0, dtype=np.float64)
        steps = np.arange(1, n + 1, dtype=np.uint64)
        with np.errstate(over='ignore'):
            t = ((np.uint64(self.state) + steps * np.uint64(_GOLDEN)) & np.uint64(_M32)).astype(np.uint32)
            self.state = int(t[-1])
            t = (t ^ (t >> np.uint32(15))) * (t | np.uint32(1))
            t = t ^ (t + (t ^ (t >> np.uint32(7))) * (t | np.uint32(61)))
            t = t ^ (t >> np.uint32(14))
        return t.astype(np.float64) / 4294967296.0

    def uniform(self) -> float:
        return float(self.uniforms(1)[0])

    def normals(self, n: int) -> np.ndarray:
        """The next n standard normal draws (two uniforms each, as Rng.normal())."""
        u = self.uniforms(2 * n).reshape(n, 2) if n > 0 else np.zeros((0, 2))
        return np.sqrt(-2.0 * np.log(1.0 - u[:, 0])) * np.cos(2.0 * math.pi * u[:, 1])


def uniform_init(n: int, sigma: float, rng: TsRng) -> np.ndarray:
    """Uniform on +-sigma*sqrt(3) (variance sigma^2), float32."""
    bound = sigma * math.sqrt(3)
    return ((rng.uniforms(n) * 2.0 - 1.0) * bound).astype(np.float32)


def conv_init(out: int, inp: int, kh: int, kw: int, he: bool, masked: bool, rng: TsRng) -> np.ndarray:
    """Conv weights [out, inp, kh, kw] (flat): sigma^2 = (4 with he, else 2) / (fanIn + fanOut), fans halved under a mask."""
    fan_in = inp * kh * kw
    fan_out = out * kh * kw
    if masked:
        fan_in /= 2
        fan_out /= 2
    return uniform_init(out * inp * kh * kw, math.sqrt((4 if he else 2) / (fan_in + fan_out)), rng)


def linear_init(out: int, inp: int, rng: TsRng) -> np.ndarray:
    """Linear weights [out, inp] (flat): orthogonal (Gram-Schmidt on a Gaussian) when square, else LeCun uniform."""
    if out != inp:
        return uniform_init(out * inp, math.sqrt(1 / inp), rng)
    n = out
    m = rng.normals(n * n).reshape(n, n)
    for r in range(n):
        for p in range(r):
            m[r] -= np.dot(m[r], m[p]) * m[p]
        m[r] /= math.sqrt(float(np.cumsum(m[r] * m[r])[-1]))
    return m.reshape(-1).astype(np.float32)


def row_norms(w: np.ndarray, out: int) -> np.ndarray:
    """Per-output-unit L2 norms (summed in order, in float64): the gains that make W = V at step 0."""
    rows = w.astype(np.float64).reshape(out, -1)
    return np.sqrt(np.cumsum(rows * rows, axis=1)[:, -1]).astype(np.float32)


# ---- masks, padding, gates ----------------------------------------------------------------------------

MaskType = Optional[str]  # None, 'A', 'B' or 'vstack'


def conv_mask(kind: str, cout: int, cin: int, kh: int, kw: int, groups: int = 1) -> torch.Tensor:
    """1 where the mask keeps tap [co, ci, ky, kx] (refMaskKeeps in src/engine/reference/conv.ts)."""
    if kind not in ('A', 'B', 'vstack'):
        raise ValueError(f"unknown mask type {kind!r} (one of 'A', 'B', 'vstack')")
    cy, cx = kh // 2, kw // 2
    m = torch.zeros(cout, cin, kh, kw)
    if kind == 'vstack':
        m[:, :, : cy + 1, :] = 1
        return m
    m[:, :, :cy, :] = 1
    m[:, :, cy, :cx] = 1
    gi = torch.arange(cin) % groups
    go = torch.arange(cout) % groups
    centre = (gi[None, :] < go[:, None]) if kind == 'A' else (gi[None, :] <= go[:, None])
    m[:, :, cy, cx] = centre.to(m.dtype)
    return m


Padding = Union[int, Tuple[int, int, int, int]]


def as_padding(p: Padding) -> Tuple[int, int, int, int]:
    return (p, p, p, p) if isinstance(p, int) else (int(p[0]), int(p[1]), int(p[2]), int(p[3]))


def pad2d(x: torch.Tensor, padding: Tuple[int, int, int, int]) -> torch.Tensor:
    """Zero padding [top, bottom, left, right] of the last two axes; a negative value crops."""
    top, bottom, left, right = padding
    h, w = x.shape[-2], x.shape[-1]
    if min(padding) < 0:
        x = x[..., max(0, -top): h - max(0, -bottom), max(0, -left): w - max(0, -right)]
    if max(padding) > 0:
        x = F.pad(x, (max(0, left), max(0, right), max(0, top), max(0, bottom)))
    return x


def gate(pre: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Gated activation over interleaved channels: out[c] = tanh(pre[2c]) * sigmoid(pre[2c+1]).

    `cond` [N, 2C] (z's per-image terms, interleaved the same way) is added at every position first.
    """
    if cond is not None:
        pre = pre + cond.reshape(cond.shape[0], cond.shape[1], *([1] * (pre.dim() - 2)))
    return torch.tanh(pre[:, 0::2]) * torch.sigmoid(pre[:, 1::2])


def weight_norm(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """W = g * v / ||v|| per output row (row = everything but axis 0)."""
    norm = torch.sqrt((v * v).reshape(v.shape[0], -1).sum(1))
    return v * (g / norm).reshape(-1, *([1] * (v.dim() - 1)))


def _param(values: np.ndarray, shape: Sequence[int]) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(*shape).clone())


# ---- layers ---------------------------------------------------------------------------------------------


class Conv2d(nn.Module):
    """Conv2d of src/nn/layers.ts: optional weight norm and mask, stride 1|2, asymmetric padding
    [top, bottom, left, right] (default k//2 each side; negative crops), and the fused epilogue of our
    conv op in its order: + bias, + pre_residual, + cond (per image), gate, + residual."""

    def __init__(self, cin: int, cout: int, kernel: Union[int, Tuple[int, int]], rng: TsRng, *, stride: int = 1,
                 padding: Optional[Padding] = None, mask: MaskType = None, groups: int = 1,
                 weight_norm: bool = False, bias: bool = True, he: bool = True):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.cin, self.cout, self.kh, self.kw, self.stride = cin, cout, kh, kw, stride
        self.padding = as_padding(padding) if padding is not None else (kh // 2, kh // 2, kw // 2, kw // 2)
        self.mask_type = mask
        init = conv_init(cout, cin, kh, kw, he, mask is not None, rng)
        self.weight = _param(init, (cout, cin, kh, kw))
        self.gain = _param(row_norms(init, cout), (cout,)) if weight_norm else None
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        if mask is not None:
            self.register_buffer('mask', conv_mask(mask, cout, cin, kh, kw, groups), persistent=False)
        else:
            self.mask = None
        # Every mask zeroes the rows below the centre (and, in a 1 x k kernel, the columns right of it):
        # convolving with the kept taps only, on an input with as many fewer rows (columns) at the
        # bottom (right), gives the same outputs for less arithmetic, as the engine skips masked taps.
        self.taps = (kh // 2 + 1, kw // 2 + 1 if kh == 1 else kw) if mask is not None else (kh, kw)
        top, bottom, left, right = self.padding
        self.tap_padding = (top, bottom - (kh - self.taps[0]), left, right - (kw - self.taps[1]))

    def effective_weight(self) -> torch.Tensor:
        w = weight_norm(self.weight, self.gain) if self.gain is not None else self.weight
        return w * self.mask if self.mask is not None else w

    def forward(self, x: torch.Tensor, *, residual: Optional[torch.Tensor] = None, pre_residual: Optional[torch.Tensor] = None,
                cond: Optional[torch.Tensor] = None, gate_output: bool = False) -> torch.Tensor:
        w = self.effective_weight()[:, :, :self.taps[0], :self.taps[1]]
        y = F.conv2d(pad2d(x, self.tap_padding), w, self.bias, stride=self.stride)
        if pre_residual is not None:
            y = y + pre_residual
        if gate_output:
            y = gate(y, cond)
        elif cond is not None:
            y = y + cond[:, :, None, None]
        if residual is not None:
            y = y + residual
        return y


class ConvTranspose2d(nn.Module):
    """Transposed conv (weight [Cin, Cout, k, k], no weight norm), initialised as conv_init(in, out)
    times the stride (docs/departures.md: TF's fan convention)."""

    def __init__(self, cin: int, cout: int, kernel: int, rng: TsRng, *, stride: int, padding: int, output_padding: int = 0, bias: bool = True):
        super().__init__()
        self.stride, self.pad, self.output_padding = stride, padding, output_padding
        init = conv_init(cin, cout, kernel, kernel, True, False, rng) * np.float32(stride)
        self.weight = _param(init, (cin, cout, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As a plain conv of the input with zeros between its pixels: CPU PyTorch 1.13 has no fast
        # transposed conv (its backward was most of the upsampling decoder's time); same outputs.
        b, c, h, w = x.shape
        k, s = self.weight.shape[2], self.stride
        spread = x.new_zeros(b, c, (h - 1) * s + 1, (w - 1) * s + 1)
        spread[:, :, ::s, ::s] = x
        lo = k - 1 - self.pad
        spread = F.pad(spread, (lo, lo + self.output_padding, lo, lo + self.output_padding))
        return F.conv2d(spread, self.weight.flip(2, 3).transpose(0, 1), self.bias)


class Linear(nn.Module):
    """Linear map y = x W^T + b with weight [out, in], optional weight norm."""

    def __init__(self, cin: int, cout: int, rng: TsRng, *, weight_norm: bool = False, bias: bool = True):
        super().__init__()
        self.cin, self.cout = cin, cout
        init = linear_init(cout, cin, rng)
        self.weight = _param(init, (cout, cin))
        self.gain = _param(row_norms(init, cout), (cout,)) if weight_norm else None
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def effective_weight(self) -> torch.Tensor:
        return weight_norm(self.weight, self.gain) if self.gain is not None else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


# ---- naming -----------------------------------------------------------------------------------------------


class ParamTree:
    """Places layers in a module tree under their checkpoint names and records the creation order.

    `add(root, 'pix.input.vstack', conv)` makes `conv` reachable as root.pix.input.vstack (creating
    empty containers on the way), so its parameters are named 'pix.input.vstack.weight' etc. A layer
    may later get children ('pix.input.vstack.cond_tanh'). `order` lists every parameter name in the
    order the TypeScript ParamSet creates them.
    """

    def __init__(self, root: nn.Module, rng: TsRng):
        self.root = root
        self.rng = rng
        self.order: List[str] = []

    def add(self, name: str, module: nn.Module) -> nn.Module:
        parts = name.split('.')
        node = self.root
        for part in parts[:-1]:
            child = node._modules.get(part)
            if child is None:
                child = nn.Module()
                node.add_module(part, child)
            node = child
        if parts[-1] in node._modules:
            raise ValueError(f'layer {name} defined twice')
        node.add_module(parts[-1], module)
        for pname, _ in module.named_parameters(recurse=False):
            self.order.append(f'{name}.{pname}')
        return module

    def conv(self, name: str, cin: int, cout: int, kernel, **kw) -> Conv2d:
        return self.add(name, Conv2d(cin, cout, kernel, self.rng, **kw))

    def deconv(self, name: str, cin: int, cout: int, kernel: int, **kw) -> ConvTranspose2d:
        return self.add(name, ConvTranspose2d(cin, cout, kernel, self.rng, **kw))

    def linear(self, name: str, cin: int, cout: int, **kw) -> Linear:
        return self.add(name, Linear(cin, cout, self.rng, **kw))


class GateConditioning:
    """z's per-gate terms: interleave(tanhTerm, sigmoidTerm) [B, 2P] from two linear maps named
    '<name>.cond_tanh' and '<name>.cond_sigmoid' (networks.ts)."""

    def __init__(self, tree: ParamTree, name: str, latent_dim: int, width: int, weight_norm: bool):
        self.tanh_map = tree.linear(f'{name}.cond_tanh', latent_dim, width, weight_norm=weight_norm)
        self.sigmoid_map = tree.linear(f'{name}.cond_sigmoid', latent_dim, width, weight_norm=weight_norm)

    def term(self, z: torch.Tensor) -> torch.Tensor:
        a = self.tanh_map(z)
        b = self.sigmoid_map(z)
        return torch.stack([a, b], dim=2).reshape(z.shape[0], -1)


def named_parameters_in_order(module: nn.Module, order: Sequence[str]) -> List[Tuple[str, nn.Parameter]]:
    """The module's parameters in a recorded order; refuses if the names differ (a construction bug)."""
    params = dict(module.named_parameters())
    if set(params) != set(order) or len(order) != len(set(order)):
        missing = sorted(set(order) - set(params))
        extra = sorted(set(params) - set(order))
        raise RuntimeError(f'parameter order out of step with the module: missing {missing}, unrecorded {extra}')
    return [(n, params[n]) for n in order]
