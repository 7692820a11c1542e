"""Single-head self-attention over a sequence, with a refinement block that runs only when
``control > 0.5``.

Not a founding model: the "before" of a common refactor, three projections ``q``, ``k``
and ``v`` fused into one (:mod:`reference_models.fused_attention`). Each sample's tokens
(``x`` is batch × time × features) get learned positions and attend to each other; then ``refine``, a small block of its own, runs on the attended tokens when the
control says so, and ``out`` maps each token to the output.

What is dynamic: the path is pos → q → k → v → (refine.fc → refine) → out, ``refine``
only when ``control > 0.5``. The inputs are squashed with ``tanh`` (a layer norm of a
constant row at magnitude 1e3 is rounding noise in float32), so the attention scores stay
small. Positions keep the tokens apart, so every
projection influences the output even when all the inputs are equal (attention over equal
values would make ``q`` and ``k`` irrelevant); a sequence needs at least two tokens for
the same reason (a softmax over one key is 1 whatever ``q`` and ``k`` say).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dyncheck.strategies import tensors

__all__ = ["Attention"]

MAX_TOKENS = 8


class Refine(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.fc = nn.Linear(size, size)

    def forward(self, h):
        return F.relu(self.fc(h))


class Attention(nn.Module):
    __dyncheck__ = {
        "inputs": {"x": tensors(shape=("batch", "time", 8))},
        "dims": {"time": (2, MAX_TOKENS)},
    }

    def __init__(self, input_size=8, hidden_size=6, output_size=4):
        super().__init__()
        self.pos = nn.Embedding(MAX_TOKENS, input_size)
        self.q = nn.Linear(input_size, hidden_size)
        self.k = nn.Linear(input_size, hidden_size)
        self.v = nn.Linear(input_size, hidden_size)
        self.refine = Refine(hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = torch.tanh(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        q, k, v = self.q(h), self.k(h), self.v(h)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        h = weights @ v
        if control > 0.5:
            h = h + self.refine(h)
        return self.out(h)
