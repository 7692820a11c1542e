"""LandmarkAttention: Nystromformer's attention through landmarks, on a fixed length.

Not a founding model: the counterpart of a wrong inference met on a model from a library
people use. Nystromformer summarises queries and keys by landmarks, the means of equal
segments of a sequence whose length the config fixes (``segment_means_seq_len``):
``q.reshape(-1, landmarks, seq_len // landmarks, dim).mean(-2)``. The ``-1`` takes
whatever is left, so a batch of 2 sequences of half that length reshapes without error
into one sequence of landmarks, and broadcasting carries the call on: the size probe took
length 8 for a length the model runs at. Each probed size now also runs at a batch of 3
(24 tokens do not fill segments of 16), so only the fixed length is drawn.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LandmarkAttention"]


class LandmarkAttention(nn.Module):
    def __init__(self, vocab_size=32, hidden_size=8, seq_len=16, landmarks=4, classes=3):
        super().__init__()
        self.seq_len, self.landmarks = seq_len, landmarks
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, classes)

    def forward(self, input_ids):
        h = self.embed(input_ids)
        q, k, v = self.query(h), self.key(h), self.value(h)
        segment = self.seq_len // self.landmarks
        q_landmarks = q.reshape(-1, self.landmarks, segment, q.shape[-1]).mean(-2)
        k_landmarks = k.reshape(-1, self.landmarks, segment, k.shape[-1]).mean(-2)
        scale = q.shape[-1] ** -0.5
        # tokens attend to the landmarks, which attend to the tokens
        to_landmarks = F.softmax(q @ k_landmarks.transpose(-1, -2) * scale, dim=-1)
        from_tokens = F.softmax(q_landmarks @ k.transpose(-1, -2) * scale, dim=-1)
        h = h + to_landmarks @ (from_tokens @ v)
        return self.classifier(h.mean(1))
