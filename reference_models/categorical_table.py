"""A forecaster's encoder over a dict batch, as pytorch-forecasting hands one over: known
categorical variables side by side in ``x["encoder_cat"]`` (batch, time, variables), each
embedded by its own table as ``x["encoder_cat"][..., i]``, concatenated with the continuous
``x["encoder_cont"]`` (normalised by the dataset) into an LSTM, whose last step gives the forecast.

What it proves: zero-config inputs where forward picks one column of an input's last axis
(``[..., i]``). Drawn as the ids the first table embeds, ``[batch, time]``, the column pick
took the steps away, and every check raised (a dict entry), or, for a plain argument, the
LSTM ran the batch as one unbatched sequence and ``batch_invariance`` failed the correct
model. The table is drawn with as many columns as forward picks, its ids below the smallest
table's vocabulary, and the continuous entry with the LSTM's features the embeddings leave
(an entry of a dict counts beside the others as an argument does).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ForecastEncoder"]


class ForecastEncoder(nn.Module):
    def __init__(self, n_cont=3, weekdays=7, stores=5, embed_dim=4, hidden=8, horizon=2):
        super().__init__()
        self.weekday = nn.Embedding(weekdays, embed_dim)
        self.store = nn.Embedding(stores, embed_dim)
        self.lstm = nn.LSTM(2 * embed_dim + n_cont, hidden, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x):
        weekday = self.weekday(x["encoder_cat"][..., 0])
        store = self.store(x["encoder_cat"][..., 1])
        features = torch.cat([weekday, store, x["encoder_cont"]], dim=-1)
        out, _ = self.lstm(features)
        return self.head(out[:, -1])
