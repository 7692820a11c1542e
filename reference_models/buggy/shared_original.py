"""Invariant: runs

The founding ``SharedNet`` exactly as written (founding document 001, a Chinese article
on weight sharing): three linear layers in an ``nn.ModuleDict`` whose hidden and output
weights are tied to the input layer's weight, with the evident forward
input -> relu -> hidden -> relu -> output added. ``input.weight`` is
``[hidden_size, input_size]``, but the hidden layer needs ``[hidden_size, hidden_size]``
and the output layer ``[output_size, hidden_size]``. Assigning a parameter does not
check its shape, so construction succeeds and the model fails when called: with
``input_size != hidden_size`` the hidden layer's matmul raises "mat1 and mat2 shapes
cannot be multiplied"; with ``input_size == hidden_size != output_size`` adding the
output bias fails, except that ``output_size == 1`` broadcasts and silently returns
``[batch, hidden_size]``. Only equal sizes run correctly, so a check must use sizes that
differ to see the bug.

A correct version ties only weights of one shape -- here it requires
``input_size == hidden_size == output_size`` and says so in the constructor
(:class:`reference_models.shared.SharedNet`); or it shares a weight between layers of
the same shape and transposes where the shapes are mirror images.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SharedNet"]


class SharedNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
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
