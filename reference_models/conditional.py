"""Conditional generative models, as their tutorials write them: inputs inference must
read through a concatenation and through an embedding with no parameters.

* ``ConditionalGenerator``: PyTorch-GAN's conditional GAN generator. A class label is
  embedded and concatenated with the noise vector, ``torch.cat((self.label_emb(labels),
  noise), -1)``, before the first Linear: the noise has that layer's features less the
  embedding's, and the labels are one id per sample (``[batch]``, not a sequence).
* ``TimestepDenoiser``: a diffusion model's denoiser (the MLP form of DDPM's), whose
  timestep goes through a sinusoidal position embedding with no parameters before the
  Linear that first shows a width: the timestep is one number per sample, and ``x`` has
  the features the concatenation leaves beside the time embedding.

What they prove: before, inference gave the noise and ``x`` the first layer's whole width
and the labels and timesteps an axis too many, and every check reported the model's crash
("Tensors must have same number of dimensions"). Now the widths come from the
concatenation's other parts (an Embedding's ``embedding_dim``, a Sequential's last
Linear), and an input that runs only as ``[batch]`` is found by calling the model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ConditionalGenerator", "TimestepDenoiser"]


class ConditionalGenerator(nn.Module):
    def __init__(self, n_classes=10, latent_dim=16, img_size=8):
        super().__init__()
        self.img_size = img_size
        self.label_emb = nn.Embedding(n_classes, n_classes)
        self.model = nn.Sequential(
            nn.Linear(latent_dim + n_classes, 32),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(32, img_size * img_size),
            nn.Tanh(),
        )

    def forward(self, noise, labels):
        gen_input = torch.cat((self.label_emb(labels), noise), -1)
        img = self.model(gen_input)
        return img.view(img.size(0), 1, self.img_size, self.img_size)


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        half = self.dim // 2
        emb = math.log(10000) / (half - 1)
        emb = torch.exp(torch.arange(half, device=x.device) * -emb)
        emb = x[:, None] * emb[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class TimestepDenoiser(nn.Module):
    def __init__(self, dim=6, time_dim=8, hidden=32):
        super().__init__()
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(time_dim), nn.Linear(time_dim, time_dim), nn.GELU())
        self.net = nn.Sequential(nn.Linear(dim + time_dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x, time):
        return self.net(torch.cat([x, self.time_mlp(time)], dim=-1))
