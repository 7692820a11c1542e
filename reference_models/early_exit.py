"""An early-exit network: in training every block runs and every exit head is trained; in
eval a sample stops at the first exit head that is confident, and the call returns as soon
as every sample of the batch has stopped.

Not a founding model: the pattern of adaptive-inference networks (BranchyNet, DeeBERT,
early-exit transformers), reduced to its control flow. The model's paths differ between
the modes: train always takes the full path; eval takes a shorter one whenever the batch is
confident early (``if not self.training and done.all(): return logits``). A checker that
looked at one mode only would call the early return an untaken branch while its own
eval-mode checks ran it.

Notable:

* The exit decision is per sample (a confident sample keeps its logits, the others go
  on), so a sample's output does not depend on the rest of its batch; only the path does
  (the call stops when the last sample is done).
* In training the output is the mean of every exit's logits, so every exit head is
  connected to the output and learns.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["EarlyExitNet"]


class EarlyExitNet(nn.Module):
    def __init__(self, input_size=8, hidden_size=16, output_size=4, num_blocks=3, threshold=0.9):
        super().__init__()
        self.embed = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU()) for _ in range(num_blocks)
        )
        self.exits = nn.ModuleList(nn.Linear(hidden_size, output_size) for _ in range(num_blocks))
        self.threshold = threshold

    def forward(self, x):
        h = self.embed(x)
        exits = []
        logits = done = None
        for block, head in zip(self.blocks, self.exits):
            h = block(h)
            current = head(h)
            exits.append(current)
            # A sample that is done keeps the logits of the exit it stopped at.
            logits = current if logits is None else torch.where(done[:, None], logits, current)
            confident = current.softmax(-1).amax(-1) > self.threshold
            done = confident if done is None else done | confident
            if not self.training and done.all():
                return logits
        return torch.stack(exits).mean(0) if self.training else logits
