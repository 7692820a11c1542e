"""The gated net after a refactor that renamed its layers: ``fc1``, ``fc2`` and ``fc3`` of
:mod:`reference_models.gated` became ``encoder``, ``gated`` and ``head``.

Not a founding model: the good refactor with a key mapping. Its ``__dyncheck__`` names the
old model and how the old ``state_dict`` keys map to the new ones (whole modules renamed),
so ``refactor_agreement`` loads the old weights into it and checks that both compute the
same outputs, gradients and branch decisions on every example (``control > 0.5`` runs
``gated``, as it ran ``fc2``).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GatedNet"]


class GatedNet(nn.Module):
    __dyncheck__ = {
        "against": "reference_models.gated:DynamicNet",
        "state_map": {"fc1": "encoder", "fc2": "gated", "fc3": "head"},
    }

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.encoder = nn.Linear(input_size, hidden_size)
        self.gated = nn.Linear(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = F.relu(self.encoder(x))
        if control > 0.5:
            h = F.relu(self.gated(h))
        return self.head(h)
