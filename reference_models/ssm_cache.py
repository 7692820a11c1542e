"""A tiny selective state-space language model in the style of Hugging Face's Mamba:
``forward(input_ids, attention_mask)``, two layers, each a short causal convolution and a
diagonal recurrence whose decay is ``A_log = log(arange(1, state + 1))`` repeated for every
channel, and an output that hands back a cache for the next call (the convolution's last
inputs and the recurrent state).

What it proves, two ways a correct model of this kind was misread:

* ``tied_weights``: every layer's ``A_log`` holds the same values (a formula, not a random
  draw), which is not a tie made by copying; a parameter whose values repeat is excused.
* ``padding_invariance``: the cache holds the steps the call saw last, padding included, so a
  right-padded row's cache differs from the row's alone; the cache is state for continuing
  the sequence (which a right-padded batch never is), not this call's result, and is not
  compared. The hidden states are masked, and are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SSMCache", "TinySSM"]


@dataclass
class SSMCache:
    conv_states: list[torch.Tensor]
    ssm_states: list[torch.Tensor]


@dataclass
class SSMOutput:
    last_hidden_state: torch.Tensor
    cache_params: SSMCache


class _Layer(nn.Module):
    def __init__(self, hidden: int, state: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(hidden, hidden, kernel, groups=hidden, padding=kernel - 1)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state + 1, dtype=torch.float32)).repeat(hidden, 1))
        self.B = nn.Linear(hidden, state, bias=False)
        self.C = nn.Linear(hidden, state, bias=False)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x * mask[..., None]
        steps = x.shape[1]
        u = self.conv(x.transpose(1, 2))[..., :steps].transpose(1, 2)
        u = torch.nn.functional.silu(u) * mask[..., None]
        decay = torch.exp(-torch.exp(self.A_log))  # [hidden, state]
        b, c = self.B(u), self.C(u)  # [batch, steps, state]
        h = x.new_zeros(x.shape[0], x.shape[2], decay.shape[1])
        ys = []
        for t in range(steps):
            h = decay * h + u[:, t, :, None] * b[:, t, None, :]
            ys.append((h * c[:, t, None, :]).sum(-1))
        y = torch.stack(ys, 1) if ys else u
        conv_state = nn.functional.pad(x, (0, 0, max(0, self.kernel - steps), 0))[:, -self.kernel:]
        return x + self.out(y), conv_state, h


class TinySSM(nn.Module):
    # No step reads a later one: causality checks it.
    __dyncheck__ = {"causal": True}

    def __init__(self, vocab_size=40, hidden=8, state=4, kernel=3, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.layers = nn.ModuleList(_Layer(hidden, state, kernel) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, input_ids, attention_mask=None):
        mask = (torch.ones_like(input_ids) if attention_mask is None else attention_mask).to(self.embed.weight.dtype)
        x = self.embed(input_ids)
        conv_states, ssm_states = [], []
        for layer in self.layers:
            x, conv_state, ssm_state = layer(x, mask)
            conv_states.append(conv_state)
            ssm_states.append(ssm_state)
        return SSMOutput(self.norm(x) * mask[..., None], SSMCache(conv_states, ssm_states))
