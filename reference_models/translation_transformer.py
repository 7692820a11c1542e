"""A translation model on ``nn.Transformer``, in the layout of the well-known translation
tutorials: time-major source and target token ids, and every mask a required argument of
forward, handed on to ``nn.Transformer`` in its places (``src_mask``, ``tgt_mask``, then the
three key padding masks).

Not a founding model: before, dyncheck followed each mask past the transformer to the output
layer and drew it as that layer's input, ``[batch, 8]``, and every check reported the
transformer's crash. A required argument forward hands to one of torch's attention layers
in a mask's place is now drawn as None, no mask, which each of those places accepts (the
masks themselves are not drawn: which sequence a padding mask goes with is not guessed).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TranslationTransformer"]


class TranslationTransformer(nn.Module):
    def __init__(self, vocab: int = 20, dim: int = 8, heads: int = 2, max_len: int = 32) -> None:
        super().__init__()
        self.dim = dim
        self.source = nn.Embedding(vocab, dim)
        self.target = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(max_len, 1, dim) * 0.1)
        # time-major layers: the encoder is built here only to say it takes no nested tensors
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=16, dropout=0.1)
        encoder = nn.TransformerEncoder(layer, 1, nn.LayerNorm(dim), enable_nested_tensor=False)
        self.transformer = nn.Transformer(
            dim, heads, num_decoder_layers=1, dim_feedforward=16, dropout=0.1, custom_encoder=encoder
        )
        self.generator = nn.Linear(dim, vocab)

    def _embed(self, embedding: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        return embedding(tokens) * math.sqrt(self.dim) + self.positions[: tokens.size(0)]

    def forward(self, src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_key_padding_mask):
        out = self.transformer(
            self._embed(self.source, src), self._embed(self.target, tgt), src_mask, tgt_mask, None,
            src_padding_mask, tgt_padding_mask, memory_key_padding_mask,
        )
        return self.generator(out)
