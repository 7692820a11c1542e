"""MaskedCRFTagger: a BiLSTM-CRF named-entity tagger on a padded batch, as it is written with
pytorch-crf (``torchcrf.CRF``): ``forward(tokens, tags, mask)`` returns each sentence's
negative log-likelihood of its tags, the CRF's score of the tag path minus the log of its
partition function, both computed step by step under the mask (True at tokens).

Not a founding model: the counterpart of a zero-config refusal on pytorch-crf. The tags
reach the CRF's own forward and from there a helper, ``_score``, which reads
``self.start[tags[0]]`` and ``self.transitions[tags[i - 1], tags[i]]`` in a loop over the
steps; the mask goes the same way. ``tags`` and ``mask`` had "no layer that gives their
shape", and the error asked for both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["MaskedCRFTagger"]


class LinearChainCRF(nn.Module):
    """A linear-chain CRF over emissions ``[batch, steps, tags]`` (``batch_first``, as
    ``torchcrf.CRF(num_tags, batch_first=True)``)."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if emissions.shape[:2] != tags.shape or mask.shape != tags.shape:
            raise ValueError(f"emissions {tuple(emissions.shape)}, tags {tuple(tags.shape)} and mask {tuple(mask.shape)} disagree")
        emissions, tags, mask = emissions.transpose(0, 1), tags.transpose(0, 1), mask.transpose(0, 1)
        return self._score(emissions, tags, mask) - self._normalizer(emissions, mask)

    def _score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        steps, batch = tags.shape
        weights = mask.float()
        rows = torch.arange(batch)
        score = self.start[tags[0]] + emissions[0, rows, tags[0]]
        for i in range(1, steps):
            score = score + (self.transitions[tags[i - 1], tags[i]] + emissions[i, rows, tags[i]]) * weights[i]
        last = tags[mask.long().sum(0) - 1, rows]
        return score + self.end[last]

    def _normalizer(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        score = self.start + emissions[0]
        for i in range(1, emissions.shape[0]):
            step = torch.logsumexp(score.unsqueeze(2) + self.transitions + emissions[i].unsqueeze(1), dim=1)
            score = torch.where(mask[i].unsqueeze(1), step, score)
        return torch.logsumexp(score + self.end, dim=1)


class MaskedCRFTagger(nn.Module):
    def __init__(self, vocab: int = 20, hidden: int = 8, num_tags: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.emissions = nn.Linear(2 * hidden, num_tags)
        self.crf = LinearChainCRF(num_tags)

    def forward(self, tokens: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).cpu()
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=tokens.shape[1])
        return -self.crf(self.emissions(h), tags, mask)
