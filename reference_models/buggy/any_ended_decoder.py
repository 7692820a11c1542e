"""Invariant: batch_invariance

Greedy decoding that stops the whole batch when the first sample ends.
``reference_models.greedy_decoder`` decodes until every sample
has emitted the end token; this one stops when any has (``ended.any()`` for
``ended.all()``), so a sample's tokens are cut short by another sample in its batch: alone
it decodes further than its row of the batch.
"""

from __future__ import annotations

import torch

from reference_models.greedy_decoder import PAD, START, END, GreedyDecoder

__all__ = ["Model"]


class Model(GreedyDecoder):
    def forward(self, source):
        _, hidden = self.encoder(self.embedding(source))
        hidden = hidden[0]
        token = torch.full((source.size(0),), START, dtype=torch.long, device=source.device)
        ended = torch.zeros(source.size(0), dtype=torch.bool, device=source.device)
        tokens, scores = [], []
        while not bool(ended.any()) and len(tokens) < self.max_steps:  # the bug: any, not all
            hidden = self.cell(self.embedding(token), hidden)
            step = self.scores(hidden)
            token = step.argmax(-1).masked_fill(ended, PAD)
            tokens.append(token)
            scores.append(step.masked_fill(ended[:, None], 0.0))
            ended = ended | (token == END)
        return torch.stack(tokens, 1), torch.stack(scores, 1)
