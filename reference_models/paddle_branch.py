"""A PyTorch port of a Paddle model whose middle layer runs with probability 1/2.

Source: founding document 003, a Chinese technical post on dynamic graphs in Paddle 2.
Its ``MyModel(paddle.nn.Layer)`` runs ``linear1 -> relu``, then
``linear2 -> relu`` only ``if paddle.rand([1,]) > 0.5``, then ``linear3`` down to one
output. The post prints ``paddle.summary`` several times -- after definition, after
training and after inference -- and gets either three or two ``Linear`` layers
(99,073 or 33,281 parameters), concluding that the structure is dynamic at definition,
training and inference time alike.

What is dynamic: the branch is decided by the framework's RNG on every call and is taken
with probability 1/2, independently of the input, so the same input takes different
paths (and gives different outputs) from call to call. ``paddle.summary`` traces one
call, so it shows only the one path taken by that call; neither count is "the" size of
the model.

Notable:

* ``paddle.rand([1,])`` is ported as ``torch.rand([1])``, which draws from torch's
  global CPU generator: with ``torch.manual_seed`` set, the branch -- and the whole
  model -- is repeatable, even when the inputs live on an accelerator.
* One draw decides the path for the whole batch.
* This ports the structure, not the numbers: Paddle stores a ``Linear`` weight as
  ``[in_features, out_features]`` and initialises it differently from PyTorch.
* The argument name ``inputs`` is kept from the Paddle code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MyModel"]


class MyModel(nn.Module):
    def __init__(self, input_size, hidden_size):
        super(MyModel, self).__init__()
        self.linear1 = nn.Linear(input_size, hidden_size)
        self.linear2 = nn.Linear(hidden_size, hidden_size)
        self.linear3 = nn.Linear(hidden_size, 1)

    def forward(self, inputs):
        x = self.linear1(inputs)
        x = F.relu(x)

        if torch.rand([1]) > 0.5:  # paddle.rand([1,]) > 0.5
            x = self.linear2(x)
            x = F.relu(x)

        x = self.linear3(x)

        return x
