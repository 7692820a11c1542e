"""Invariant: refactor_agreement

The renamed gated net (:mod:`reference_models.renamed_gated`), with its branch condition
changed at the threshold in the refactor: ``control >= 0.5`` where the old model says
``control > 0.5``. Every control but 0.5 itself takes the same path, so ordinary tests of
the refactor pass; ``refactor_agreement`` tries the threshold (it is read from forward's
source) and reports a path divergence: at ``control=0.5`` the new model runs ``gated``
(old ``fc2``) where the old model went straight to ``fc3``.

A correct refactor keeps the comparison as it was (``control > 0.5``).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
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
        if control >= 0.5:  # the bug: the old model runs fc2 only when control > 0.5
            h = F.relu(self.gated(h))
        return self.head(h)
