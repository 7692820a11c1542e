"""A VQ-VAE whose codebook is learned by exponential moving averages, as VQ-VAE-2 and
vector-quantize-pytorch do by default: each training call assigns the encodings to their
nearest codes, then moves the codes (three buffers) towards the encodings assigned to them,
under ``torch.no_grad()``; the decoder reads the quantised codes through the
straight-through estimator. In eval mode the codebook stays as it is.

What it proves: ``determinism`` does not report training statistics. The second of two
train-mode calls reads the codebook the first moved; buffers a call updates in place at
their shapes are put back before the second, and the summary's note names them (before,
"the first call changed vq.embed (a buffer)" was reported, and the advice was to skip
determinism). The buggy counterpart also updates the codebook in eval mode
(``buggy/eval_codebook_update.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EMAQuantizedAutoencoder"]


class EMAQuantizer(nn.Module):
    def __init__(self, codes=8, dim=4, decay=0.9, eps=1e-5):
        super().__init__()
        self.decay, self.eps = decay, eps
        embed = torch.randn(codes, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(codes))
        self.register_buffer("embed_sum", embed.clone())

    def update(self, flat, onehot):
        with torch.no_grad():
            self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
            n = self.cluster_size.sum()
            size = (self.cluster_size + self.eps) / (n + len(self.embed) * self.eps) * n
            self.embed.copy_(self.embed_sum / size.unsqueeze(1))

    def forward(self, z, update=None):
        flat = z.reshape(-1, z.shape[-1])
        distance = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t() + self.embed.pow(2).sum(1)
        codes = distance.argmin(1)
        quantised = self.embed[codes].view_as(z)
        if self.training if update is None else update:
            self.update(flat, F.one_hot(codes, len(self.embed)).type(flat.dtype))
        return z + (quantised - z).detach(), codes.view(z.shape[:-1])


class EMAQuantizedAutoencoder(nn.Module):
    def __init__(self, features=10, hidden=16, latent=4, codes=8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.vq = EMAQuantizer(codes, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, features))

    def forward(self, x):
        quantised, codes = self.vq(self.encoder(x))
        return {"reconstruction": self.decoder(quantised), "codes": codes}
