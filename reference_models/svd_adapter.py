"""SVDAdapterLinear: a Linear with a low-rank adapter as peft's AdaLoRA builds one, ``W x +
B (A * E) x * scaling / ranknum``: the adapters kept per name in ``nn.ParameterDict``s, the
singular values ``E`` initialised to zero (the adapter adds nothing until trained), and the
rank a frozen Parameter (``requires_grad=False``) read on every call,
``self.ranknum[adapter]``.

Not a founding model: the counterpart of a false alarm on peft's AdaLoRA as it comes.
``coverage`` called ``ranknum`` dead: a frozen Parameter reaches no gradient, its
``nn.ParameterDict`` is never called, and with ``E`` at zero changing it moves nothing. A
frozen Parameter in a ParameterDict or ParameterList now counts as run where the module
holding the container ran, as one held by that module itself does.
``buggy/unapplied_adapter.py`` looks its adapter up under another name and never adds it:
its trainable adapter weights are still reported dead.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SVDAdapterLinear"]


class SVDAdapterLinear(nn.Module):
    def __init__(self, features: int = 8, rank: int = 2, outputs: int = 4, adapter: str = "default") -> None:
        super().__init__()
        self.base = nn.Linear(features, features)
        self.lora_A = nn.ParameterDict({adapter: nn.Parameter(torch.randn(rank, features) * 0.3)})
        self.lora_E = nn.ParameterDict({adapter: nn.Parameter(torch.zeros(rank, 1))})
        self.lora_B = nn.ParameterDict({adapter: nn.Parameter(torch.randn(features, rank) * 0.3)})
        self.ranknum = nn.ParameterDict({adapter: nn.Parameter(torch.tensor([float(rank)]), requires_grad=False)})
        self.active_adapter, self.scaling = adapter, 1.0
        self.head = nn.Linear(features, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        name = self.active_adapter
        if name in self.lora_A:
            low_rank = x @ (self.lora_A[name] * self.lora_E[name]).T @ self.lora_B[name].T
            out = out + low_rank * self.scaling / (self.ranknum[name] + 1e-5)
        return self.head(out)
