"""A temporal convolutional network (TCN): dilated causal convolutions with residuals.

Not a founding model: the pattern of WaveNet and of Bai et al.'s TCN, as their code writes
it. Each ``Conv1d`` pads ``(kernel_size - 1) * dilation`` steps on both ends and a
``Chomp1d`` cuts as many from the end, so step ``t`` of every layer reads steps ``t`` and
before of the layer below: the model is causal, declared ``causal=True``, and ``causality``
checks that the first steps run alone give the first steps of the output. Its buggy
counterpart (``buggy/centred_conv.py``) chomps the wrong end.

The convolutions are under the legacy ``torch.nn.utils.weight_norm``, as that code has them:
each keeps its ``weight`` computed from ``weight_g`` and ``weight_v`` (recomputed before every
forward), a tensor ``copy.deepcopy`` refuses. Every check once stopped on it with an error
inside dyncheck; its copies now hold it detached, and ``tied_weights`` notes the deep copy it
cannot look at.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from dyncheck.strategies import tensors

__all__ = ["CausalTCN"]


def _weight_norm(conv: nn.Conv1d) -> nn.Conv1d:
    """The legacy weight_norm, which torch deprecates (for parametrizations.weight_norm)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(conv)


class Chomp1d(nn.Module):
    """Drops the last ``size`` steps: the right padding a causal convolution must not read."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.size].contiguous()


class TemporalBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        padding = (kernel_size - 1) * dilation
        self.net = nn.Sequential(
            _weight_norm(nn.Conv1d(channels_in, channels_out, kernel_size, padding=padding, dilation=dilation)),
            Chomp1d(padding),
            nn.ReLU(),
            nn.Dropout(dropout),
            _weight_norm(nn.Conv1d(channels_out, channels_out, kernel_size, padding=padding, dilation=dilation)),
            Chomp1d(padding),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.downsample = nn.Conv1d(channels_in, channels_out, 1) if channels_in != channels_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.net(x) + residual)


class CausalTCN(nn.Module):
    """``forward(x)`` with ``x`` of ``[batch, time, features]``: a prediction per step."""

    __dyncheck__ = {
        "inputs": {"x": tensors(shape=("batch", "time", 3), min_value=-10, max_value=10)},
        "causal": True,
    }

    def __init__(self, features: int = 3, channels: tuple[int, ...] = (6, 6), kernel_size: int = 2,
                 outputs: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        layers = []
        width = features
        for level, size in enumerate(channels):
            layers.append(TemporalBlock(width, size, kernel_size, 2 ** level, dropout))
            width = size
        self.network = nn.Sequential(*layers)
        self.head = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.network(x.transpose(1, 2)).transpose(1, 2)
        return self.head(hidden)
