"""BagConcat: each sample a bag of vectors ``[batch, items, features]``, encoded and pooled
one sample at a time, the pooled rows gathered by a running concatenation
(``out = torch.cat([out, row])``), as hand-written multiple-instance and set models do.

Not a founding model: the counterpart of a misreading of such loops. A loop over
``range(x.size(0))`` whose body assigned a name from its own earlier value was read as a
recurrence over time; a concatenation that only gathers each step's result is not one (it is
what ``rows.append(row)`` gives). The input was drawn time-major ``[time, batch, 6]``, its
items taken for the batch, and ``batch_invariance`` compared nothing: every output row pooled
over the "batch" (``buggy/batch_centred_bags.py``, which centres each bag on the mean of the
whole batch, was missed). A running concatenation read nowhere else is now not a state
(``dyncheck.infer.flow._concatenated``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BagConcat"]


class BagConcat(nn.Module):
    def __init__(self, features: int = 6, hidden: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.encode = nn.Linear(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(1, keepdim=True)  # each bag on its own mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.centre(x)
        pooled = x.new_zeros(0, self.encode.out_features)
        for i in range(x.size(0)):
            row = torch.relu(self.encode(x[i])).mean(0, keepdim=True)
            pooled = torch.cat([pooled, row], dim=0)
        return self.head(pooled)  # [batch, classes]
