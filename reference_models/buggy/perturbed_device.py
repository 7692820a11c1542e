"""Invariant: device_agreement

Not a model: deliberately broken "devices" for testing device agreement on a machine
without a GPU. Each is a :class:`dyncheck.agreement.Config` running on the CPU
with one thing perturbed, and each must be reported as what it is:

* ``NUMERIC`` adds 1e-3 to the first Linear layer's output: outputs and gradients differ;
* ``GRADIENT`` scales the first Linear weight's gradient by 1.01: outputs agree, a
  gradient differs;
* ``FLIPPED`` adds 1e3 to the first Linear layer's output: a data-dependent branch takes
  the other side, a path divergence;
* ``OTHER_STREAM`` changes nothing but the random stream the model draws from, as a GPU's
  generator does for the same seed: a model that draws no random numbers agrees, one that
  does is reported with how to make the streams agree.

Use one as ``--dyncheck-devices=cpu,reference_models.buggy.perturbed_device:NUMERIC``.
"""

from __future__ import annotations

import torch
from torch import nn

from dyncheck.agreement import Config

__all__ = ["FLIPPED", "GRADIENT", "NUMERIC", "OTHER_STREAM"]


def _first_linear(model: nn.Module) -> nn.Linear:
    return next(m for m in model.modules() if isinstance(m, nn.Linear))


def _shift_output(amount: float):
    def patch(model: nn.Module) -> nn.Module:
        _first_linear(model).register_forward_hook(lambda module, args, output: output + amount)
        return model

    return patch


def _scale_gradient(model: nn.Module) -> nn.Module:
    _first_linear(model).weight.register_hook(lambda grad: grad * 1.01)
    return model


NUMERIC = Config("cpu (perturbed output)", "cpu", patch=_shift_output(1e-3))
GRADIENT = Config("cpu (perturbed gradient)", "cpu", patch=_scale_gradient)
FLIPPED = Config("cpu (branch-flipping)", "cpu", patch=_shift_output(1e3))


class _OtherStream(nn.Module):
    """Calls the model after reseeding torch from the block's seed plus one."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        torch.manual_seed(torch.initial_seed() + 1)
        return self.model(*args, **kwargs)


OTHER_STREAM = Config("cpu (another random stream)", "cpu", patch=_OtherStream)
