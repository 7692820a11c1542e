"""Invariant: finite

Local attention built from a band mask and a key padding mask on torch's
``nn.TransformerEncoderLayer`` (Longformer's window, written with torch's layer): a padded
query whose window holds only padding has no key to attend to. The training path gives it
a finite output, which the masked pooling drops; torch's fused inference path (eval mode
without autograd, as a model is served) gives NaN, and ``NaN * 0`` survives the pooling.
dyncheck's inference call (a plain call: its module hooks turn that path off elsewhere)
reports "NaN/inf outputs in eval mode without autograd".

A correct version lets every query attend to itself: ``band & ~torch.eye(T, dtype=bool)``
kept out of the mask, or padded queries given their own position.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab=30, d_model=16, n_heads=2, window=1, layers=2):
        super().__init__()
        self.window = window
        self.emb = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, 32, dropout=0.0, batch_first=True) for _ in range(layers)
        )
        self.head = nn.Linear(d_model, 3)

    def forward(self, input_ids, attention_mask):
        steps = torch.arange(input_ids.size(1), device=input_ids.device)
        band = (steps[None, :] - steps[:, None]).abs() > self.window  # True: not allowed
        x = self.emb(input_ids)
        for layer in self.layers:
            x = layer(x, src_mask=band, src_key_padding_mask=attention_mask == 0)  # the bug: windows of padding only
        keep = attention_mask.unsqueeze(-1).float()
        return self.head((x * keep).sum(1) / keep.sum(1).clamp(min=1))
