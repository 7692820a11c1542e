"""Invariant: batch_invariance

The detection head of ``reference_models.per_image_boxes`` with every image's boxes scaled
by the largest coordinate in the batch: an image's boxes change with the other images.
dyncheck compares entry ``i`` of the per-image list with image ``i`` run alone and reports
"sample 0 differs from the same sample run alone (output[1][0])".

A correct version scales each image by its own values, or not at all.
"""

from __future__ import annotations

import torch

from reference_models.per_image_boxes import BoxHead

__all__ = ["Model"]


class Model(BoxHead):
    def forward(self, x):
        logits, boxes = self.boxes(x)
        boxes = boxes / boxes.abs().amax().clamp(min=1e-6)  # the bug: the batch's largest box
        keep = self.kept(logits)
        return torch.sigmoid(logits), [boxes[i][keep[i]] for i in range(x.shape[0])]
