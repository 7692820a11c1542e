"""LeNet-5 as the PyTorch tutorials write it: two 5x5 convolutions, each followed by a
ReLU and 2x2 max pooling, then three Linear layers over the flattened 16x5x5 features.

What it proves: zero-config inputs for a convolutional network whose first layer says
little about the input size. ``conv1`` runs on any image of at least 5x5, but the pooling
further in and ``fc1`` (sized for the features of a 32x32 image) run at 32-35 only:
resolution finds those sizes by calling the model (see ``dyncheck.target._probe_sizes``)
instead of drawing images every check would report as the model's crash.

``FeatureLeNet`` is the same network with a required ``return_features: bool`` that returns
``fc2``'s features instead of the classes (a retrieval head's embedding). A control value
beside the image left the sizes unprobed (every input had to be a tensor), and every check
reported a crash on 5x5 images.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FeatureLeNet", "LeNet"]


class LeNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class FeatureLeNet(LeNet):
    def forward(self, x, return_features: bool):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        features = torch.relu(self.fc2(torch.relu(self.fc1(torch.flatten(x, 1)))))
        if return_features:
            return features
        return self.fc3(features)
