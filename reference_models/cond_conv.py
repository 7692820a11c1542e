"""CondConv (Yang et al., 2019): a convolution whose kernel is mixed per sample from
several experts' kernels by a routing function of the sample's pooled features, run as
one grouped convolution over the batch (``groups=B``), as its reference code does.

What it proves: a layer that takes images but whose only Linear reads them pooled
(``self.routing(F.adaptive_avg_pool2d(x, 1).flatten(1))``) is checked on images. The
Linear says ``[batch, 8]``; forward unpacks ``B, C, H, W = x.shape``, so vectors and
sequences raise, and resolution tries images of that many channels, which run; the size
probe then finds their sizes. Before, every check reported "not enough values to unpack".
``buggy/batch_routed_condconv.py`` routes from features pooled over the batch as well, one
kernel for every sample, and ``batch_invariance`` catches it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CondConv2d"]


class CondConv2d(nn.Module):
    def __init__(self, in_channels=8, out_channels=8, kernel_size=3, num_experts=4, padding=1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.num_experts = kernel_size, padding, num_experts
        self.routing = nn.Linear(in_channels, num_experts)
        self.weight = nn.Parameter(torch.randn(num_experts, out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(num_experts, out_channels))

    def forward(self, x):
        B, C, H, W = x.shape
        r = torch.sigmoid(self.routing(F.adaptive_avg_pool2d(x, 1).flatten(1)))
        weight = torch.einsum("be,eoikl->boikl", r, self.weight)
        weight = weight.reshape(B * self.out_channels, C, self.kernel_size, self.kernel_size)
        bias = (r @ self.bias).reshape(-1)
        out = F.conv2d(x.reshape(1, B * C, H, W), weight, bias, padding=self.padding, groups=B)
        return out.reshape(B, self.out_channels, out.shape[-2], out.shape[-1])
