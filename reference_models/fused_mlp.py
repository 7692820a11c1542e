"""An MLP whose activation is a fused kernel that refuses float64.

Fused kernels (a bias-GELU or grouped matmul in CUDA or Triton, fused attention, quantised
ops) are usually built for float32, float16 and bfloat16 only, and refuse float64 the way
torch's own dispatch does: ``"fused_bias_gelu" not implemented for 'Double'``. A tiny
faithful form: a custom autograd Function, GELU(x + bias) in one step with its own
backward, that raises that message for any other dtype.

What it proves: a model whose float64 copy cannot run in such a kernel is not buggy.
``dtype_agreement`` has no float64 reference to compare with, and says so as a skip that
names the kernel and its error; every other check passes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FusedMLP"]

_BUILT_FOR = {torch.float32: "Float", torch.float16: "Half", torch.bfloat16: "BFloat16"}
_TYPE_NAMES = {torch.float64: "Double", torch.complex64: "ComplexFloat", torch.complex128: "ComplexDouble"}


class _FusedBiasGelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bias):
        if x.dtype not in _BUILT_FOR:
            raise RuntimeError(f"\"fused_bias_gelu\" not implemented for '{_TYPE_NAMES.get(x.dtype, x.dtype)}'")
        ctx.save_for_backward(x, bias)
        return F.gelu(x + bias)

    @staticmethod
    def backward(ctx, grad):
        x, bias = ctx.saved_tensors
        z = x + bias
        cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
        pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        grad_z = grad * (cdf + z * pdf)
        return grad_z, grad_z.reshape(-1, grad_z.shape[-1]).sum(0)


class FusedMLP(nn.Module):
    def __init__(self, input_size=10, hidden_size=16, output_size=4):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(_FusedBiasGelu.apply(self.fc1(x), self.bias))
