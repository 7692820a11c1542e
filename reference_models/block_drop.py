"""BlockDrop (Wu et al., 2018) as its training code runs: a policy network gives each
residual block a keep probability from the input; in training the actions are Bernoulli
samples of those probabilities (learned with REINFORCE) and a dropped block is computed and
multiplied by 0 per sample, so the batch keeps one shape; in eval a block runs only for the
samples whose probability is over one half, and is skipped otherwise.

What it proves: a block that a random draw masked is a random choice, not a mask to report.
``grad_isolation`` rule 3 ("ran but did not influence the output: skip it instead of masking
the result away") reported the dropped blocks on an example whose draws dropped them (a
zero input, where each probability is about one half, or a large one that saturates the
policy). Run again with every random draw at either end of its range, the blocks influence
the output, and the mask is the draw's.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BlockDropNet"]


class BlockDropNet(nn.Module):
    def __init__(self, input_size=8, hidden=16, blocks=3, classes=4):
        super().__init__()
        self.policy = nn.Linear(input_size, blocks)
        self.stem = nn.Linear(input_size, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()) for _ in range(blocks))
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        probs = torch.sigmoid(self.policy(x))
        h = self.stem(x)
        if self.training:
            actions = torch.bernoulli(probs)
            for i, block in enumerate(self.blocks):
                h = h + actions[:, i:i + 1] * block(h)
            return self.head(h), probs
        keep = probs > 0.5
        for i, block in enumerate(self.blocks):
            rows = keep[:, i]
            if rows.any():
                h = h.clone()
                h[rows] = h[rows] + block(h[rows])
        return self.head(h), probs
