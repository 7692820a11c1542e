"""Targets that are themselves one of torch's layers, as factories return them.

Not founding systems: what a user checks first, a layer straight from ``torch.nn``. No
source of the user's says what such a target takes; dyncheck reads it from the layer's
attributes (``input_size`` and ``batch_first``, ``d_model``, ``embed_dim`` with ``kdim``
and ``vdim``). Every one is correct and must pass every invariant that applies.
"""

from __future__ import annotations

from torch import nn

__all__ = [
    "bidirectional_lstm",
    "cross_attention",
    "encoder",
    "encoder_layer",
    "time_major_gru",
]


def bidirectional_lstm() -> nn.LSTM:
    """Input ``[batch, time, 4]``; output ``(output [batch, time, 16], (h_n, c_n))``."""
    return nn.LSTM(4, 8, num_layers=2, bidirectional=True, batch_first=True)


def time_major_gru() -> nn.GRU:
    """Input ``[time, batch, 5]`` (torch's default layout)."""
    return nn.GRU(5, 6)


def encoder_layer() -> nn.TransformerEncoderLayer:
    """Input ``[batch, time, 16]``; ends in a LayerNorm (post-norm)."""
    return nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)


def encoder() -> nn.TransformerEncoder:
    """Two post-norm layers, time-major: input ``[time, batch, 16]``."""
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


def cross_attention() -> nn.MultiheadAttention:
    """Queries ``[batch, time, 16]`` attend to keys ``[batch, source, 6]`` and values
    ``[batch, source, 5]``."""
    return nn.MultiheadAttention(16, 2, kdim=6, vdim=5, batch_first=True)
