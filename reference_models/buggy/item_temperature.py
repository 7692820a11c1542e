"""Invariant: grad_isolation

CLIP's two towers with the learnable temperature read through ``.item()``:
``self.logit_scale.exp().item() * image_embeds @ text_embeds.T``. The scores are right, but
the temperature is a plain number in the graph and never learns. It is a parameter of the
model itself, owned by no submodule; dyncheck reports "the model ran, but its own
logit_scale is not connected to the output through autograd".

A correct version multiplies by the tensor, ``self.logit_scale.exp() * ...``
(``reference_models.two_tower``).
"""

from __future__ import annotations

from reference_models.two_tower import TwoTower

__all__ = ["Model"]


class Model(TwoTower):
    def temperature(self):
        return self.logit_scale.exp().item()  # the bug: a constant of the graph, never learns
