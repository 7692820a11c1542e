"""A feed-forward net whose middle layer is switched on and off by a control input.

Source: founding document 000, an English tutorial snippet on dynamic neural networks in
PyTorch. It builds three fully connected layers and runs the middle one only when a
control signal is greater than 0.5; the tutorial motivates this with an image pipeline
that skips an enhancement stage for poorly lit images.

What is dynamic: the graph depends on ``control``. With ``control > 0.5`` the path is
fc1 -> fc2 -> fc3; otherwise it is fc1 -> fc3, and fc2 takes no part in the forward pass
and must receive no gradient.

Notable:

* The comparison is kept exactly as written, ``control > 0.5``: the boundary value 0.5
  itself skips fc2. ``control`` may be a Python number or a one-element tensor (the
  tutorial passes ``torch.rand(1)``); a tensor with more than one element raises
  "Boolean value of Tensor with more than one value is ambiguous".
* One decision is made for the whole batch, not per row.
* fc2 maps ``hidden_size`` to ``hidden_size``, so both paths give fc3 the same width.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DynamicNet"]


class DynamicNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(DynamicNet, self).__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        x = F.relu(self.fc1(x))
        # Conditionally execute fc2 based on the 'control' input
        if control > 0.5:
            x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x
