"""Invariant: padding_invariance

``KeywordLatentEncoder`` whose pre-norm wrapper prepends a summary step to the context it
reads from ``**kwargs``, the mean of every step, padding included, and marks it valid in the
mask it hands on: the padding steps' values reach every output through that mean. The
input and the mask reach the attention only through ``**kwargs``; before dyncheck followed
keywords there, the input was drawn as ``[batch, 16, 6]`` with no mask and this bug was
missed. The correct version hands the context on as it is
(``reference_models/keyword_context.py``).
"""

from __future__ import annotations

import torch

from reference_models.keyword_context import KeywordLatentEncoder, PreNorm

__all__ = ["Model"]


class SummaryPreNorm(PreNorm):
    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor | None) -> torch.Tensor:
        context = self.norm_context(kwargs["context"])
        summary = context.mean(1, keepdim=True)  # over the padding steps too
        kwargs.update(context=torch.cat([summary, context], 1))
        if kwargs.get("mask") is not None:
            mask = kwargs["mask"]
            kwargs.update(mask=torch.cat([mask.new_ones(mask.shape[0], 1), mask], 1))
        return self.fn(self.norm(x), **kwargs)


class Model(KeywordLatentEncoder):
    def __init__(self) -> None:
        super().__init__()
        cross = self.cross_block.cross_attention
        self.cross_block.cross_attention = SummaryPreNorm(16, cross.fn, context_dim=6)
