"""A vision transformer whose patch embedding is einops' ``Rearrange`` layer, as vit-pytorch
writes it: ``Sequential(Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=4, p2=4),
LayerNorm(48), Linear(48, dim), LayerNorm(dim))``, a class token, and a positional table
sliced to the patches the image has (so any multiple of the patch up to the image size
runs); and the same ViT inside a feature extractor that returns its patch embeddings.

What it proves: an image reshaped into patches before any layer that says a shape is
worked back from the layer after the reshape. The pattern says the input is ``[batch, c,
h * p1, w * p2]`` and the LayerNorm over the patches says ``p1 * p2 * c = 48``, so ``c``
is 3 and the height and width are multiples of 4; the size probe then finds those that run.
Before, vit-pytorch's ``ViT``, ``SimpleViT``, ``CaiT``, ``DeepViT`` were refused and the
same ViT inside ``Extractor``, ``Dino``, ``CrossViT`` or ``MAE`` was too (a Spec was needed
for every one of them).

``Rearrange`` here is a small stand-in for einops' layer (dyncheck does not depend on
einops): it keeps ``pattern`` and ``axes_lengths`` as einops' does, and does what einops
does for patterns of named axes and groups of them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["EinopsViT", "PatchFeatures"]


def _axes(side: str) -> list[list[str]]:
    """One side of a pattern as its axes, each the names it groups."""
    axes: list[list[str]] = []
    group: list[str] | None = None
    for token in side.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            group = []
        elif token == ")":
            axes.append(group)
            group = None
        elif group is not None:
            group.append(token)
        else:
            axes.append([token])
    return axes


class Rearrange(nn.Module):
    """einops' ``Rearrange(pattern, **axes_lengths)`` for named axes and groups of them, each
    with one unknown length at most: the input's groups are split, the names reordered as
    the right side lists them, and its groups merged."""

    def __init__(self, pattern: str, **axes_lengths: int) -> None:
        super().__init__()
        self.pattern = pattern
        self.axes_lengths = axes_lengths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = (_axes(side) for side in self.pattern.split("->"))
        lengths = dict(self.axes_lengths)
        for group, size in zip(left, x.shape):
            # the group's one unknown length; a size the others do not divide fails the reshape
            known = math.prod(lengths.get(name, 1) for name in group)
            lengths.update({name: size // known for name in group if name not in lengths})
        names = [name for group in left for name in group]
        x = x.reshape([lengths[name] for name in names])
        x = x.permute([names.index(name) for group in right for name in group])
        return x.reshape([math.prod(lengths[name] for name in group) for group in right])


class EinopsViT(nn.Module):
    def __init__(
        self, image: int = 16, patch: int = 4, channels: int = 3, dim: int = 16, heads: int = 2, classes: int = 5
    ) -> None:
        super().__init__()
        patch_dim = channels * patch * patch
        self.to_patch_embedding = nn.Sequential(
            Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch, p2=patch),
            nn.LayerNorm(patch_dim),
            nn.Linear(patch_dim, dim),
            nn.LayerNorm(dim),
        )
        patches = (image // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, patches + 1, dim))
        self.transformer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.to_patch_embedding(img)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        # vit-pytorch slices the table to the patches the image has: an image larger than
        # the model's raises, a smaller one (a multiple of the patch) runs
        x = x + self.pos_embedding[:, : x.shape[1]]
        return self.head(self.transformer(x)[:, 0])


class PatchFeatures(nn.Module):
    """vit-pytorch's ``Extractor``: the logits of the ViT it wraps and its patch embeddings
    (the class token dropped), caught by a hook on the transformer for the one call."""

    def __init__(self) -> None:
        super().__init__()
        self.vit = EinopsViT()

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        caught: list[torch.Tensor] = []
        handle = self.vit.transformer.register_forward_hook(lambda module, args, out: caught.append(out))
        try:
            logits = self.vit(img)
        finally:
            handle.remove()
        return logits, caught[0][:, 1:]
