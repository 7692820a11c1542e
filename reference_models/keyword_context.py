"""KeywordLatentEncoder: a Perceiver's encoder (perceiver-pytorch's ``PerceiverIO``) whose
input reaches the cross-attention only through ``**kwargs``: the block hands
``context=data, mask=mask`` to a pre-norm wrapper, ``PreNorm.forward(x, **kwargs)``, which
reads ``kwargs["context"]``, normalises it, puts it back with ``kwargs.update(...)`` and
hands everything on, ``self.fn(x, **kwargs)``.

Not a founding model: the counterpart of a quiet misreading of perceiver-pytorch. The flow
of ``data`` stopped at the wrapper (``context`` is no parameter of its forward) and went on
to the next layer the block calls on what the attention made of it, the latents'
``LayerNorm(16)``: ``data`` was drawn as a signal ``[batch, 16, 6]`` of a fixed 16 steps,
its mask never drawn, so ``padding_invariance`` never ran (``buggy/keyword_summary_step.py``
was missed). A keyword taken through ``**kwargs`` is now followed there
(``dyncheck.infer.flow.keyword_entries``): ``data`` is ``("batch", "time", 6)``, first taken
by ``LayerNorm([6])``, with its padding mask.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KeywordLatentEncoder"]


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module, context_dim: int | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None

    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(x)
        if self.norm_context is not None:
            context = kwargs["context"]
            kwargs.update(context=self.norm_context(context))
        return self.fn(x, **kwargs)


class Attention(nn.Module):
    def __init__(self, dim: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        context = x if context is None else context
        k, v = self.to_kv(context).chunk(2, dim=-1)
        scores = self.to_q(x) @ k.transpose(-1, -2) * x.shape[-1] ** -0.5
        if mask is not None:  # True at tokens
            scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        return self.to_out(scores.softmax(-1) @ v)


class CrossBlock(nn.Module):
    def __init__(self, dim: int, context_dim: int) -> None:
        super().__init__()
        self.cross_attention = PreNorm(dim, Attention(dim, context_dim), context_dim=context_dim)
        self.cross_ff = PreNorm(dim, nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)))

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.cross_attention(x, context=context, mask=mask)
        return x + self.cross_ff(x)


class KeywordLatentEncoder(nn.Module):
    def __init__(self, num_latents: int = 4, dim: int = 16, context_dim: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.cross_block = CrossBlock(dim, context_dim)
        self.latent_attention = PreNorm(dim, Attention(dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, data: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.latents.expand(data.shape[0], -1, -1)
        x = self.cross_block(x, context=data, mask=mask)
        x = x + self.latent_attention(x)
        return self.head(x.mean(1))
