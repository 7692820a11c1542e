"""A classifier that returns probabilities: a softmax is its last layer.

What it proves: a loss under which every output element matters. A softmax output sums to
1 whatever its input, so under a plain sum loss every parameter would get a gradient of
rounding noise and every check that compares gradients (``dtype_agreement``,
``padding_invariance``, step isolation) would be comparing noise. dyncheck's default loss is
a fixed random projection of the output, so the gradients are real and the model passes
every check.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SoftmaxClassifier"]


class SoftmaxClassifier(nn.Module):
    def __init__(self, input_size=10, hidden_size=16, num_classes=5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=-1)
