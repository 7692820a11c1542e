"""A classifier that runs an image at one of a few scales, chosen per call by an index into a
tuple of scale factors the class holds (``self.SCALES[scale]``), as multi-scale training
and test-time augmentation code picks a resolution: bilinear resizing, a convolution,
global pooling, a Linear.

What it proves: an ``int`` that indexes a tuple the model holds is drawn from 0 to its
last index. Drawn as any small int (0 to 3), every check reported ``IndexError: tuple index
out of range`` on the correct model; and the image sizes are probed with it, so that the
smallest scale still leaves the convolution a pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MultiScaleClassifier"]


class MultiScaleClassifier(nn.Module):
    SCALES = (1.0, 0.5, 0.25)

    def __init__(self, channels=3, width=8, classes=5):
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor, scale: int):
        factor = self.SCALES[scale]
        if factor != 1.0:
            x = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        h = torch.relu(self.conv(x))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))
