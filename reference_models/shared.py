"""Three linear layers that share one weight matrix (weight tying), in a form that runs.

Source: founding document 001, a Chinese article on PyTorch's dynamic graphs and weight
sharing. To "reduce the number of parameters" it puts three layers in an
``nn.ModuleDict`` and ties the hidden and output layers' weights to the input layer's::

    self.layers = nn.ModuleDict({
        'input': nn.Linear(input_size, hidden_size),
        'hidden': nn.Linear(hidden_size, hidden_size),
        'output': nn.Linear(hidden_size, output_size),
    })
    self.layers['hidden'].weight = self.layers['input'].weight
    self.layers['output'].weight = self.layers['input'].weight

The founding mistake: an ``nn.Linear(in_features, out_features)`` weight has shape
``[out_features, in_features]``, so ``input.weight`` is ``[hidden_size, input_size]``,
while the hidden layer needs ``[hidden_size, hidden_size]`` and the output layer needs
``[output_size, hidden_size]``. Assigning the parameter does not check its shape, so the
constructor succeeds and the model only fails when it is called: with
``input_size != hidden_size`` (as in any ordinary use), the hidden layer's matmul fails
("mat1 and mat2 shapes cannot be multiplied"). When ``input_size == hidden_size`` but
``output_size`` differs, the output layer's matmul succeeds with the wrong weight and
adding its ``[output_size]`` bias fails; with ``output_size == 1`` that bias broadcasts
and the model silently returns ``[batch, hidden_size]`` instead of ``[batch, 1]``. The
document also shows no ``forward``. The founding version is kept, as written, in
:mod:`reference_models.buggy.shared_original`.

This working form keeps the constructor's names, the same ``ModuleDict`` and the same
two ties, gives the sizes defaults (so it can be built with no configuration), refuses
unequal sizes with a ``ValueError`` up front, and adds the evident forward
input -> relu -> hidden -> relu -> output.

What is dynamic: nothing branches, but one parameter is used three times in a forward
pass; its gradient must be the sum of the three uses, and ``parameters()`` lists it once
(the biases stay separate).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SharedNet"]


class SharedNet(nn.Module):
    def __init__(self, input_size=8, hidden_size=8, output_size=8):
        super().__init__()
        if not input_size == hidden_size == output_size:
            # Without this check the constructor succeeds and the first forward fails
            # with a matmul shape error far from the cause (see the module docstring).
            raise ValueError(
                "SharedNet ties hidden.weight and output.weight to input.weight, and a "
                "tied weight must have one shape for all layers that share it: "
                f"input.weight is [{hidden_size}, {input_size}] (hidden_size, input_size), "
                f"the hidden layer needs [{hidden_size}, {hidden_size}] and the output "
                f"layer needs [{output_size}, {hidden_size}]; got input_size={input_size}, "
                f"hidden_size={hidden_size}, output_size={output_size}. "
                "Use equal sizes, e.g. "
                f"SharedNet({hidden_size}, {hidden_size}, {hidden_size})."
            )
        self.layers = nn.ModuleDict({
            'input': nn.Linear(input_size, hidden_size),
            'hidden': nn.Linear(hidden_size, hidden_size),
            'output': nn.Linear(hidden_size, output_size),
        })
        self.layers['hidden'].weight = self.layers['input'].weight  # shared parameter
        self.layers['output'].weight = self.layers['input'].weight  # shared parameter

    def forward(self, x):
        x = F.relu(self.layers['input'](x))
        x = F.relu(self.layers['hidden'](x))
        x = self.layers['output'](x)
        return x
