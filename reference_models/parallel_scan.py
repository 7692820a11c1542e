"""ParallelScanGRU: a minimal GRU (minGRU) over a batch-first sequence ``[batch, time,
features]``, its parallel form written in forward's own code: one Linear makes every step's
candidate and gate at once, then a scan in log space, ``cumsum`` and ``logcumsumexp`` over
``dim=1``. A one-step sequence takes the sequential form instead (``seq_len == 1``), from an
optional previous hidden state.

Not a founding model: the counterpart of minGRU-pytorch drawn as vectors. Its first layer is
a Linear and nothing hands a layer one step of the input, so ``x`` was drawn ``[batch, 8]``:
the model runs on it, its scan over the features, its one-step form never ran, and every
check passed on a layout it never takes. An input whose axis 1 forward names as a length
(``seq_len = x.shape[1]``), cuts by it (``out[:, -seq_len:]``) and scans over is now drawn
as a sequence where the model runs so (a window's length beside a cumulative sum over a
head's features is a vector model). ``buggy/one_step_batch_softmax.py``
normalises the one-step gate over the batch and fails ``batch_invariance``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ParallelScanGRU"]


def _g(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x + 0.5, x.sigmoid())


def _log_g(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


def scan_log(log_coeffs: torch.Tensor, log_values: torch.Tensor) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t for every step at once, in log space (Heinsen's scan)."""
    a_star = log_coeffs.cumsum(dim=1)
    log_h = a_star + (log_values - a_star).logcumsumexp(dim=1)
    return log_h.exp()


class ParallelScanGRU(nn.Module):
    def __init__(self, features: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.to_hidden_and_gate = nn.Linear(features, 2 * features, bias=False)
        self.head = nn.Linear(features, classes)

    def step_gate(self, gate: torch.Tensor) -> torch.Tensor:
        return gate.sigmoid()

    def forward(self, x: torch.Tensor, prev_hidden: torch.Tensor | None = None) -> torch.Tensor:
        seq_len = x.shape[1]
        hidden, gate = self.to_hidden_and_gate(x).chunk(2, dim=-1)
        if seq_len == 1:  # sequential: one step from the previous state
            hidden, gate = _g(hidden), self.step_gate(gate)
            out = torch.lerp(prev_hidden, hidden, gate) if prev_hidden is not None else hidden * gate
        else:  # parallel: every step at once
            log_coeffs = -F.softplus(gate)
            log_values = -F.softplus(-gate) + _log_g(hidden)
            if prev_hidden is not None:
                log_values = torch.cat((prev_hidden.log(), log_values), dim=1)
                log_coeffs = F.pad(log_coeffs, (0, 0, 1, 0))
            out = scan_log(log_coeffs, log_values)[:, -seq_len:]
        return self.head(out)  # [batch, time, classes]
