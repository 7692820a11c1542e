"""Invariant: batch_invariance

``ForecastEncoder`` that centres its LSTM's input features by their mean over the whole
batch (``features.mean(dim=(0, 1))``) in forward, a normalisation meant for one series
written over all of them: each series' forecast depends on the other series batched with
it. The correct version takes the features as the dataset normalised them
(``reference_models/categorical_table.py``); a per-series statistic would reduce over
time only (``dim=1``).
"""

from __future__ import annotations

import torch

from reference_models.categorical_table import ForecastEncoder

__all__ = ["Model"]


class Model(ForecastEncoder):
    def forward(self, x):
        weekday = self.weekday(x["encoder_cat"][..., 0])
        store = self.store(x["encoder_cat"][..., 1])
        features = torch.cat([weekday, store, x["encoder_cont"]], dim=-1)
        features = features - features.mean(dim=(0, 1), keepdim=True)  # BUG: the batch's mean
        out, _ = self.lstm(features)
        return self.head(out[:, -1])
