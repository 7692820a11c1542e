"""A two-tower model as CLIP builds it: ``forward(input_ids=None, pixel_values=None,
attention_mask=None)`` embeds the text (a masked mean of token embeddings) and the images (a
patch convolution, averaged), and scores every image against every text,
``logits_per_image = logit_scale.exp() * image_embeds @ text_embeds.T`` with CLIP's learnable
temperature, a parameter of the model itself (no submodule owns it).

What it proves, zero-config:

* a forward that requires nothing but needs two of its optional arguments: inference gives
  it its first (``input_ids``, and its mask), and with that alone it raises; each other
  argument that defaults to None is then tried, and ``pixel_values`` joins the inputs
  (before, every check reported the model's crash);
* an output that pairs every sample with every other (``[images, texts]``) is coupled
  across the batch by design: ``batch_invariance`` compares a sample alone with its
  diagonal entry and permutes both axes, ``padding_invariance`` compares the per-sample
  embeddings and leaves the pairs alone (before, both reported the pairing itself);
* the temperature is connected and learns: ``buggy.item_temperature`` reads it through
  ``.item()``, which grad_isolation reports for the model's own parameters as for a
  submodule's (before, a parameter no submodule owns was never checked).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TwoTower"]


class TwoTower(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=8, patch=4):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        self.text_projection = nn.Linear(embed_dim, embed_dim)
        self.patch_embedding = nn.Conv2d(3, embed_dim, patch, stride=patch)
        self.visual_projection = nn.Linear(embed_dim, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def temperature(self):
        return self.logit_scale.exp()

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None):
        tokens = self.token_embedding(input_ids)
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        text_embeds = self.text_projection((tokens * mask).sum(1) / mask.sum(1).clamp(min=1))
        patches = self.patch_embedding(pixel_values)
        image_embeds = self.visual_projection(patches.mean(dim=(2, 3)))
        return {
            "logits_per_image": self.temperature() * image_embeds @ text_embeds.T,
            "text_embeds": text_embeds,
            "image_embeds": image_embeds,
        }
