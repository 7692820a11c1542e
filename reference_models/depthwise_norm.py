"""A deep stack of train-mode BatchNorm, SiLU and a depthwise convolution (one filter per
channel, MobileNet's and MobileOne's kind), on images whose channels stay apart.

What it proves: a correct model whose gradients overflow because *some channels* of its
normalisation layers saw a constant input is not called broken. A channel that is constant
over the batch and the image (one a tiny image, or identical images, leave flat) stays
constant through every block, and each BatchNorm's backward multiplies its gradient by up
to ``1 / sqrt(eps)``: after 24 blocks float32 overflows and a weight's gradient is NaN.
Raising those layers' eps to 1 (what explains a wholly constant input, as in
``deep_norm``) also changes the channels that vary, so that test cannot say; with the
BatchNorms' backward scaled as eps 1 would scale it (the forward unchanged), every gradient
is finite — timm's ``mobileone_s0`` on a batch of three 1x4 images, two of them all zero, was
reported by ``finite`` before.
"""

from __future__ import annotations

from torch import nn

__all__ = ["DepthwiseNormNet"]


class DepthwiseNormNet(nn.Module):
    def __init__(self, depth=24, channels=4, classes=5):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(channels), nn.SiLU(), nn.Conv2d(channels, channels, 1, groups=channels, bias=False))
            for _ in range(depth)
        )
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean((2, 3)))
