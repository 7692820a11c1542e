"""A detection head as detection libraries post-process it: each image's anchors scored,
and the boxes of the anchors that pass the threshold kept (and each image's best), one tensor
per image in a list (``[boxes[i][keep[i]] for i in range(batch)]``), beside the scores.

What it proves: an output list with one entry per sample is read as such. batch_invariance
compares entry ``i`` of the batch's list with the one entry of sample ``i`` alone, as a
whole (and entry ``order[j]`` with entry ``j`` of the permuted batch's). Before, the entries
were cut along any axis of the batch's size (a box's four coordinates, for a batch of four)
and reported as "sample 0 differs: torch.Size([5, 4]) != torch.Size([5, 1])".
``buggy.batch_scaled_boxes`` scales every image's boxes by the batch's largest: caught.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BoxHead"]


class BoxHead(nn.Module):
    def __init__(self, input_size=8, anchors=5, threshold=0.5):
        super().__init__()
        self.anchors, self.threshold = anchors, threshold
        self.score = nn.Linear(input_size, anchors)
        self.box = nn.Linear(input_size, anchors * 4)

    def boxes(self, x):
        return self.score(x), self.box(x).view(x.shape[0], self.anchors, 4)

    def kept(self, logits):
        # the anchors scored over the threshold, and each image's best one whatever its
        # score (chosen on the logits: a saturated sigmoid ties)
        keep = torch.sigmoid(logits) > self.threshold
        keep[torch.arange(logits.shape[0]), logits.argmax(dim=1)] = True
        return keep

    def forward(self, x):
        logits, boxes = self.boxes(x)
        keep = self.kept(logits)
        return torch.sigmoid(logits), [boxes[i][keep[i]] for i in range(x.shape[0])]
