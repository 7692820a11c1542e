"""ShortConvLM: a short causal convolution whose one-step call reads the convolution's weight.

Not a founding model: the counterpart of a false alarm met on a language model from a
library people use. RecurrentGemma (and Mamba) run a short depthwise convolution over the
sequence; a step of length 1 (decoding) does not call the ``nn.Conv1d`` but multiplies by
its ``weight`` and adds its ``bias`` directly. The convolution's parameters are on that
step's path although the module did not run. With token 0 (an embedding's padding row, all
zeros) and a gate whose bias starts at zero, the gate is 0 and those parameters get an
all-zero gradient on that example: the example's activations, not a multiplication by
zero, which ``grad_isolation`` shows by moving the other weights (the gradient is then
non-zero, with the same modules run).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ShortConvLM"]


class ShortConvLM(nn.Module):
    def __init__(self, vocab_size=32, hidden_size=8, width=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size, padding_idx=0)
        self.gate = nn.Linear(hidden_size, hidden_size)
        nn.init.zeros_(self.gate.bias)  # as library initialisers do
        self.inp = nn.Linear(hidden_size, hidden_size)
        self.conv = nn.Conv1d(hidden_size, hidden_size, width, groups=hidden_size, padding=width - 1)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, input_ids):
        h = self.embed(input_ids)
        x = self.inp(h).transpose(1, 2)
        if x.shape[-1] == 1:
            # one step: the convolution's last tap, read from its weight (a decoding step)
            x = x * self.conv.weight[:, :, -1] + self.conv.bias[:, None]
        else:
            x = self.conv(x)[..., : input_ids.shape[1]]
        return self.head(x.transpose(1, 2) * F.gelu(self.gate(h)))
