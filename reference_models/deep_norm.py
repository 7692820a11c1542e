"""A deep stack of convolution, train-mode BatchNorm and SiLU, as EfficientNet and
MobileNet build them: convolutions without bias, each followed by a BatchNorm (timm's
``efficientnet_b0`` has 49 BatchNorms in a row of blocks; this has 24, of width 4).

What it proves: a correct model whose gradients overflow on a degenerate example is not
called broken. A batch of all-zero images keeps every BatchNorm's input constant (no
convolution adds a bias), so each BatchNorm normalises a channel of variance 0 and its
backward multiplies the gradient by up to ``1 / sqrt(eps)``, 316 at ``eps=1e-5``; after 24
of them float32 overflows and the stem's weight gradient is ``inf * 0 = NaN``. On any image
that is not constant the gradients are finite. ``finite`` and ``grad_isolation`` leave such
an example's gradients alone, after checking that raising those layers' eps to 1 makes
every gradient finite (see ``dyncheck.norms``), and the summary counts them.
"""

from __future__ import annotations

from torch import nn

__all__ = ["DeepNormNet"]


class DeepNormNet(nn.Module):
    def __init__(self, depth=24, width=4, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(width), nn.SiLU(), nn.Conv2d(width, width, 1, bias=False))
            for _ in range(depth)
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean((2, 3)))
