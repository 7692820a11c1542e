"""A BiLSTM-CRF tagger in the layout of PyTorch's own tutorial: ``forward(sentence)`` takes
one unbatched sentence of token ids ``[time]`` (viewed as ``(len(sentence), 1, -1)`` for a
time-major LSTM), and decodes the best tag sequence with Viterbi in a Python loop over its
words, returning the path's score and its tags. Not a founding model: before, dyncheck drew
the token ids as a batch ``[batch, time]`` (an embedding consumes them) and every check
reported the LSTM's refusal of what the view made of it; now a call finds that the model
takes one sentence (``[time]``), and ``batch_invariance``, with no batch to permute, is a
skip that says so.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BiLSTMCRFTagger"]


class BiLSTMCRFTagger(nn.Module):
    def __init__(self, vocab_size: int = 20, num_tags: int = 5, embedding_dim: int = 6, hidden_dim: int = 8) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.embed = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, bidirectional=True)
        self.emissions = nn.Linear(hidden_dim, num_tags)
        self.transitions = nn.Parameter(torch.randn(num_tags, num_tags))  # [next tag, previous tag]

    def forward(self, sentence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.lstm(self.embed(sentence).view(len(sentence), 1, -1))
        emissions = self.emissions(out.view(len(sentence), -1))
        score = torch.zeros(1, self.num_tags, device=sentence.device)
        back: list[torch.Tensor] = []
        for emission in emissions:  # Viterbi: the best previous tag for each tag, word by word
            best, previous = (score + self.transitions).max(1)
            back.append(previous)
            score = (best + emission).view(1, -1)
        best_score, last = score.max(1)
        tags = [int(last)]
        for previous in reversed(back[1:]):
            tags.append(int(previous[tags[-1]]))
        tags.reverse()
        return best_score, torch.tensor(tags, device=sentence.device)
