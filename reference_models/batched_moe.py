"""The top-1 mixture of experts of :mod:`reference_models.routing` after a refactor that
replaced its Python loop over experts with one batched dispatch.

Not a founding model: the good refactor of a loop into batched code. The experts'
weights are stacked into one ``ExpertBank`` that multiplies each sample by its own
expert's weight (gathered by the router's choice) in one batched product, instead of running
each chosen expert on its samples in turn. The callable :func:`stack_experts` builds the
new ``state_dict`` with ``torch.stack``. The two compute the same outputs and gradients
(within float32's rounding: a batched product adds in another order), and
``refactor_agreement`` reads the old ``router → experts.1 → experts.0 → head`` and the new
``router → experts → head`` as the same path: consecutive calls of experts that became one
module are one step.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dyncheck.strategies import tensors

__all__ = ["BatchedTopOneMoE", "ExpertBank", "stack_experts"]


def stack_experts(old):
    """The loop's state_dict in the batched model's names: experts.<i>.* stacked."""
    count = sum(1 for key in old if key.startswith("experts.") and key.endswith(".weight"))
    new = {key: value for key, value in old.items() if not key.startswith("experts.")}
    for part in ("weight", "bias"):
        new[f"experts.{part}"] = torch.stack([old[f"experts.{i}.{part}"] for i in range(count)])
    return new


class ExpertBank(nn.Module):
    """``num_experts`` linear layers in one stacked weight; each sample goes through its
    own expert's (``choice`` holds each sample's expert)."""

    __dyncheck__ = {
        "init": {"num_experts": 3, "input_size": 8, "hidden_size": 6},
        "inputs": {
            "x": tensors(shape=("batch", 8)),
            "choice": tensors(shape=("batch",), dtype=torch.int64, min_value=0, max_value=2),
        },
    }

    def __init__(self, num_experts, input_size, hidden_size):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_experts, hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(num_experts, hidden_size))
        bound = 1 / math.sqrt(input_size)
        for index in range(num_experts):  # as nn.Linear initialises each
            nn.init.kaiming_uniform_(self.weight.data[index], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x, choice):
        # A product summed over the input axis, row by row: the same arithmetic whatever the
        # batch size (a batched matmul picks its kernel, and so its rounding, by the sizes).
        return (self.weight[choice] * x[:, None, :]).sum(dim=-1) + self.bias[choice]


class BatchedTopOneMoE(nn.Module):
    __dyncheck__ = {"against": "reference_models.routing:TopOneMoE", "state_map": stack_experts}

    def __init__(self, input_size, hidden_size, output_size, num_experts=3):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = ExpertBank(num_experts, input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        probabilities = F.softmax(self.router(x), dim=-1)
        gate, choice = probabilities.max(dim=-1)
        return self.head(gate[:, None] * F.relu(self.experts(x, choice)))
