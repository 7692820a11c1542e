"""A classifier that picks its second layer from the width of its hidden activation.

Source: founding document 002, a Chinese article on dynamic computation graphs in
PyTorch ("example 1: choosing layers dynamically"). The classifier is meant to choose a
layer depending on the size of the input data: after ``fc1`` it runs ``fc2`` when
``x.shape[1] > 40`` and ``fc3`` otherwise.

What is dynamic, in intent: a branch on a tensor's shape.

Notable -- kept as written on purpose: the branch tests the hidden activation, not the
input. For the documented input ``[batch_size, 100]``, ``fc1`` always produces
``[batch_size, 50]``, and 50 > 40, so the ``else`` arm never runs: ``fc3`` and its
510 parameters (a 10 x 50 weight and 10 biases) are dead code that never receives a
gradient. dyncheck's coverage check reports it. (Only an input with more than two
dimensions, such as ``[batch, steps, 100]``, can reach ``fc3``, because ``x.shape[1]``
is then the number of steps; that is not an input the document describes.)

The output passes through a final ReLU, so the ten "logits" are non-negative; that is
also as written.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DynamicClassifier"]


class DynamicClassifier(nn.Module):
    # Not part of the founding code: it records the founding code's bug instead of hiding
    # it. dyncheck still runs the coverage check and it must fail (a strict xfail), so the
    # reference check stays green while the finding shows in its summary.
    __dyncheck__ = {
        "xfail": {"coverage": "as written fc3 can never run: x.shape[1] is always 50 after fc1"}
    }

    def __init__(self):
        super(DynamicClassifier, self).__init__()
        self.fc1 = nn.Linear(100, 50)
        self.fc2 = nn.Linear(50, 10)
        self.fc3 = nn.Linear(50, 10)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        if x.shape[1] > 40:
            x = torch.relu(self.fc2(x))
        else:
            x = torch.relu(self.fc3(x))
        return x
