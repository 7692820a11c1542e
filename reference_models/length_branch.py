"""A branch on the input's shape: a short sequence is mean-pooled into a Linear, a longer
one runs through a GRU whose last step is classified.

What it proves: zero-config inputs for a model whose first layer in the source (``short``)
takes the input reduced over time (``x.mean(1)``): inference puts the reduced axis back and
draws sequences ``("batch", "time", 4)``, not vectors ``("batch", 4)``. Drawn as vectors,
the model still ran (its GRU took a ``[batch, 4]`` vector as one unbatched sequence whose
steps were the samples), so nothing raised and ``batch_invariance`` reported the GRU mixing
samples as a bug of the model. Both branches are paths: ``coverage`` sees each.
"""

from __future__ import annotations

from torch import nn

__all__ = ["LengthBranch"]


class LengthBranch(nn.Module):
    def __init__(self, features=4, hidden=6, classes=3):
        super().__init__()
        self.short = nn.Linear(features, classes)
        self.rnn = nn.GRU(features, hidden, batch_first=True)
        self.long = nn.Linear(hidden, classes)

    def forward(self, x):
        if x.shape[1] <= 2:
            return self.short(x.mean(1))
        out, _ = self.rnn(x)
        return self.long(out[:, -1])
