"""RecurrentLM: two patterns of recurrent language models, each a false alarm met on a
model from a library people use.

Not a founding model.

* A short causal convolution whose one-step call reads the convolution's weight
  (RecurrentGemma, Mamba): a step of length 1 (decoding) does not call the ``nn.Conv1d``
  but multiplies by its ``weight`` and adds its ``bias``, so its parameters are on that
  step's path although the module did not run. On token 0 (the embedding's padding row, all
  zeros) behind a gate whose bias starts at zero, the gate is 0 and they get an all-zero
  gradient: the example's activations, not a multiplication by zero, which
  ``grad_isolation`` shows by moving the other weights (the gradient is then non-zero, the
  same modules running).
* A decay that only updates the state (RWKV's ``time_decay``): step t reads the state the
  steps before it left, and the update after the last step is dropped. On a sequence of
  one step the decay reaches nothing, so it gets no gradient there and moving it changes
  nothing: unused at that size, not cut off by a detach().
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["RecurrentLM"]


class RecurrentLM(nn.Module):
    def __init__(self, vocab_size=32, hidden_size=8, width=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size, padding_idx=0)
        self.gate = nn.Linear(hidden_size, hidden_size)
        nn.init.zeros_(self.gate.bias)  # as library initialisers do
        self.inp = nn.Linear(hidden_size, hidden_size)
        self.conv = nn.Conv1d(hidden_size, hidden_size, width, groups=hidden_size, padding=width - 1)
        self.mix = _TimeMix(hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, input_ids):
        h = self.embed(input_ids)
        x = self.inp(h).transpose(1, 2)
        if x.shape[-1] == 1:
            # one step: the convolution's last tap, read from its weight (a decoding step)
            x = x * self.conv.weight[:, :, -1] + self.conv.bias[:, None]
        else:
            x = self.conv(x)[..., : input_ids.shape[1]]
        return self.head(x.transpose(1, 2) * F.gelu(self.gate(h)) + self.mix(h))


class _TimeMix(nn.Module):
    """RWKV's time mixing, reduced: a state decayed by ``exp(-exp(decay))`` each step."""

    def __init__(self, hidden_size):
        super().__init__()
        self.decay = nn.Parameter(torch.zeros(hidden_size))
        self.value = nn.Linear(hidden_size, hidden_size)

    def forward(self, x):
        v = self.value(x)
        state = torch.zeros_like(v[:, 0])
        steps = []
        for t in range(v.shape[1]):
            steps.append(v[:, t] + state)
            state = torch.exp(-torch.exp(self.decay)) * state + v[:, t]  # after the last step: dropped
        return torch.stack(steps, dim=1)
