"""An Informer-style forecaster: values and time features embedded and added, step by step.

Not a founding model: the embedding the Informer/Autoformer family of time-series models
share, as their code writes it. ``forward(x_enc, x_mark_enc, x_dec, x_mark_dec)`` takes a
series and its calendar features for the encoder, and another pair for the decoder. Each
pair is embedded by a ``DataEmbedding``: the values by a ``Conv1d`` over
``x.permute(0, 2, 1)`` (inside a submodule of a submodule), the time features by a
``Linear``, a sinusoidal position table, all added, so a series and its features must have
as many steps. Inference reads the values channels-last (the permute where the Conv1d is
called) and ties their length to the features' time axis (drawn apart, the sum raised);
before, the values were drawn channels-first and every check reported the Conv1d's error.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TimeFeatureForecaster"]


class TokenEmbedding(nn.Module):
    def __init__(self, channels: int, d_model: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 2, 1)).transpose(1, 2)


class PositionalEmbedding(nn.Module):
    def __init__(self, d_model: int, max_len: int = 64) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        rate = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate)
        self.register_buffer("table", table[None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[:, : x.size(1)]


class DataEmbedding(nn.Module):
    def __init__(self, channels: int, d_model: int, time_features: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.value_embedding = TokenEmbedding(channels, d_model)
        self.position_embedding = PositionalEmbedding(d_model)
        self.temporal_embedding = nn.Linear(time_features, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor) -> torch.Tensor:
        x = self.value_embedding(x) + self.temporal_embedding(x_mark) + self.position_embedding(x)
        return self.dropout(x)


class TimeFeatureForecaster(nn.Module):
    def __init__(self, channels: int = 3, d_model: int = 8, heads: int = 2, horizon: int = 2) -> None:
        super().__init__()
        self.horizon = horizon
        self.enc_embedding = DataEmbedding(channels, d_model)
        self.dec_embedding = DataEmbedding(channels, d_model)
        self.encoder = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, batch_first=True)
        self.decoder = nn.TransformerDecoderLayer(d_model, heads, 2 * d_model, batch_first=True)
        self.projection = nn.Linear(d_model, channels)

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        memory = self.encoder(self.enc_embedding(x_enc, x_mark_enc))
        out = self.decoder(self.dec_embedding(x_dec, x_mark_dec), memory)
        return self.projection(out)[:, -self.horizon:, :]
