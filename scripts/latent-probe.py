"""Is a trained MNIST model's latent path alive? One JSON line per checkpoint, on the first N test images:

- the spread of the encoder means across images (mean over latent dimensions of their standard
  deviation) and the mean posterior sigma: a collapsed latent has means that do not move and sigma 1;
- for models with the upsampling decoder, the rms of its ReLU features and the share of them above 3,
  where gated-pixelvae's tanh is flat (docs/departures.md);
- how much the decoder's logits move, on average, when z is replaced by an unrelated draw (3 x N(0, I)),
  beside the logits' own mean magnitude: near 0 means the decoder no longer reads z.

Usage: PYTHONPATH=python /usr/bin/python3 scripts/latent-probe.py CHECKPOINT... [--n 100] [--seed 1]
"""
import argparse
import json
import sys

import numpy as np
import torch

from pixelvae_torch import data as D
from pixelvae_torch.train import load_checkpoint_model


def probe(path: str, n: int, seed: int) -> dict:
    model, _ = load_checkpoint_model(path, 'cpu')
    if model.dataset != 'mnist' or not model.has_latent:
        raise SystemExit(f'latent-probe: {path} is not an MNIST model with a latent')
    model.eval()
    size = model.config['imageSize']
    x = torch.from_numpy(D.load_mnist_split(size, None).test.images[:n][:, None].astype(np.float32))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mu, log_sigma = model.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator) * log_sigma.exp()
        other = 3 * torch.randn(mu.shape, generator=generator)
        out = {'checkpoint': path, 'preset': model.config['preset'], 'layers': model.config['pixelLayers'],
               'latent_dim': model.latent_dim, 'images': n,
               'encoder_mean_spread': round(mu.std(0).mean().item(), 5), 'posterior_sigma': round(log_sigma.exp().mean().item(), 4)}
        if model.upsampler is not None:
            features = model.upsampler(z)
            out['feature_rms'] = round(features.pow(2).mean().sqrt().item(), 4)
            out['features_above_3'] = round((features > 3).float().mean().item(), 4)
        if model.is_autoregressive:
            logits = model.decode(x, z)
            out['logit_change_other_z'] = round((logits - model.decode(x, other)).abs().mean().item(), 4)
            out['logit_magnitude'] = round(logits.abs().mean().item(), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoints', nargs='+')
    parser.add_argument('--n', type=int, default=100, help='test images (default 100)')
    parser.add_argument('--seed', type=int, default=1, help='seed of the posterior draw and the unrelated z')
    args = parser.parse_args()
    for path in args.checkpoints:
        print(json.dumps(probe(path, args.n, args.seed)), flush=True)


if __name__ == '__main__':
    sys.exit(main())
