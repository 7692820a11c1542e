"""Models handed a list of batches, one per view of the same samples.

``TwoViewContrast``: a contrastive model that scores each sample's views of itself against
its first view.

SimCLR-style code hands the model a list of batches, one per augmented view of the same
samples (``forward(views: list[Tensor])``, each ``[batch, features]``), encodes each, L2-
normalises every embedding over its features and returns, per sample, the mean cosine
similarity of its other views to its first.

What it proves: a list of tensors is not always a batch of sequences. Zero-config, the
model runs on no list of sequences of their own lengths; it runs on lists of equal batches
and gives one row per sample, so the list is inferred as per-view batches
(``lists(tensors(shape=("batch", 6)), min_size=2, max_size=3)``), and ``batch_invariance``
cuts every view to the same samples. Read as a list of sequences before, every check
crashed.

``MultiCropWrapper``: DINO's multi-crop wrapper, ``forward(crops: list[Tensor])``, each crop a
batch of images ``[batch, 3, height, width]``; runs of crops of one resolution go through
the backbone together (``torch.cat``), and the outputs come back concatenated,
``[crops * batch, features]``: each crop's batch after the previous one's, where a sample
alone gives ``[crops, features]``. It declares the list: zero-config, the refusal gives this
Spec (batches of images, whose height and width a backbone may limit, are not drawn
unasked). ``batch_invariance`` reads the output as each view's rows in turn (or each
sample's views together, whichever no sample alone refutes) and compares a sample's rows in
every view; before, it skipped the output as a batch flattened into its first axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from dyncheck.strategies import tensors

__all__ = ["MultiCropWrapper", "TwoViewContrast"]


class TwoViewContrast(nn.Module):
    def __init__(self, input_size=6, hidden_size=8, output_size=4):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, output_size))

    def embed(self, view: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(view), dim=-1)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        first, *others = [self.embed(view) for view in views]
        return torch.stack([(first * other).sum(-1) for other in others]).mean(0)


class _Backbone(nn.Module):
    def __init__(self, channels=3, hidden_size=8, output_size=4):
        super().__init__()
        self.conv = nn.Conv2d(channels, hidden_size, 3, padding=1)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(images).relu().mean((2, 3)))


class MultiCropWrapper(nn.Module):
    __dyncheck__ = {
        "inputs": {"crops": st.lists(tensors(shape=("batch", 3, "height", "width")), min_size=2, max_size=4)},
    }

    def __init__(self, hidden_size=8, output_size=4):
        super().__init__()
        self.backbone = _Backbone(3, hidden_size, output_size)

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        # the ends of the runs of crops of one resolution
        sizes = torch.tensor([crop.shape[-1] for crop in crops])
        ends = torch.cumsum(torch.unique_consecutive(sizes, return_counts=True)[1], 0).tolist()
        outputs, start = [], 0
        for end in ends:
            outputs.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.centre(torch.cat(outputs))

    def centre(self, output: torch.Tensor) -> torch.Tensor:
        return output
