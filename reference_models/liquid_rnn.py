"""A closed-form continuous-time RNN as ncps writes its ``CfC``: a cell that concatenates
the step with the hidden state it carries (``torch.cat([input, hx], 1)`` into a Linear of
``input + hidden`` features), gated by a time constant; the model loops over the steps,
takes one unbatched sequence ``[time, features]`` as well as a batch, and has an optional
initial state ``hx=None``.

What it proves: such a model's input is found by calling it. The cell's Linear takes 12
features, but 8 of them are the state: read from the Linear (or split evenly with the
forward argument also named ``hx``) the input was ``[batch, 12]`` or ``[batch, 6]`` and every
check crashed. Calls on the widths a Linear's inputs leave beside a state of its outputs'
width (12 - 8 = 4) find ``[2, 4]`` runs, but as one sequence of two steps: a row's outputs
depend on the other row, and on ``[2, 3, 4]`` each sample's are its own, so the input is
drawn as sequences (drawn as vectors, batch_invariance failed the correct model).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LiquidRNN"]


class _Cell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.backbone = nn.Linear(input_size + hidden_size, hidden_size)
        self.ff = nn.Linear(hidden_size, hidden_size)
        self.time_a = nn.Linear(hidden_size, hidden_size)
        self.time_b = nn.Linear(hidden_size, hidden_size)

    def forward(self, input: torch.Tensor, hx: torch.Tensor, ts: float) -> torch.Tensor:
        x = torch.tanh(self.backbone(torch.cat([input, hx], 1)))
        gate = torch.sigmoid(-self.time_a(x) * ts + self.time_b(x))
        return torch.tanh(self.ff(x)) * gate + hx * (1.0 - gate)


class LiquidRNN(nn.Module):
    def __init__(self, input_size: int = 4, hidden_size: int = 8, batch_first: bool = True) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.batch_first = batch_first
        self.rnn_cell = _Cell(input_size, hidden_size)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batched = input.dim() == 3
        batch_dim, seq_dim = (0, 1) if self.batch_first else (1, 0)
        if not batched:
            input = input.unsqueeze(batch_dim)
        batch_size, seq_len = input.size(batch_dim), input.size(seq_dim)
        h = input.new_zeros(batch_size, self.hidden_size) if hx is None else hx
        outputs = []
        for t in range(seq_len):
            step = input[:, t] if self.batch_first else input[t]
            h = self.rnn_cell.forward(step, h, 1.0)
            outputs.append(h)
        out = torch.stack(outputs, dim=seq_dim)
        if not batched:
            out = out.squeeze(batch_dim)
        return out, h
