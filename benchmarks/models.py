"""Models the benchmarks measure that are larger than the reference models.

``LSTMTagger`` is the issue's mid-size model: a two-layer LSTM tagger, hidden 256
(about 0.86M parameters), over a packed batch of 32 sequences of up to 64 steps.
``wide_mlp(width)`` is a gated MLP whose size is chosen, for memory against model size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


class LSTMTagger(nn.Module):
    def __init__(self, input_size: int = 64, hidden_size: int = 256, tags: int = 16) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden_size, tags)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
        return self.out(output)


#: The issue's shapes: batch 32, length up to 64 (a padded length of exactly 64).
MID_SIZE = dyncheck.Spec(
    model=LSTMTagger,
    inputs={
        "x": tensors(shape=("batch", "time", 64)),
        "lengths": sequence_lengths(batch_size="batch", max_length="time"),
    },
    dims={"batch": (32, 32), "time": (64, 64)},
)


class GatedMLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, 8)

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        if control.item() > 0.5:
            x = torch.relu(self.fc2(x))
        return self.fc3(x)


def wide_mlp(width: int) -> dyncheck.Spec:
    return dyncheck.Spec(
        model=lambda: GatedMLP(width),
        inputs={"x": tensors(shape=("batch", width)), "control": tensors(shape=(1,), min_value=0, max_value=1)},
        dims={"batch": (1, 4)},
    )


#: Gated MLPs of about 8.4M and 33.6M parameters (34 MB and 134 MB in float32).
WIDE_2048 = wide_mlp(2048)
WIDE_4096 = wide_mlp(4096)
#: About 103M parameters (411 MB in float32): the big model checked under a time budget.
WIDE_7168 = wide_mlp(7168)
