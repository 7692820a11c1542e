"""The naive reference for ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``: one sequence alone,
step by step, with the cell equations written out from the module's own weights.

``packed_rnn`` compares a module's packed forward with this loop. It is meant to be read:
it never calls the module, it runs exactly the valid steps of one sequence (so there is
no padding to ignore), and each equation is the one in PyTorch's documentation of the
module. Supported: every ``mode`` (``RNN_TANH``, ``RNN_RELU``, ``GRU``, ``LSTM``),
``num_layers``, ``bidirectional``, ``bias=False`` and LSTM ``proj_size``. The initial
state is zero (a module called without ``hx``); dropout between layers is not applied,
as in eval mode. ``batch_first`` does not matter here: the sequence has no batch axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["naive_rnn"]


def naive_rnn(
    module: nn.RNNBase, sequence: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run ``module``'s equations over one ``sequence`` of shape ``[length, input_size]``.

    Returns ``(output, h_n, c_n)`` shaped like the module's own results for a batch of
    one with the batch axis removed: ``output`` is ``[length, directions * out]``,
    ``h_n`` is ``[num_layers * directions, out]`` (layer-major, forward direction first)
    and ``c_n`` is ``[num_layers * directions, hidden_size]`` for an LSTM, else None;
    ``out`` is ``proj_size`` when the LSTM projects, else ``hidden_size``. The
    computation uses the sequence's dtype and device, which must be the module's.
    """
    length = sequence.shape[0]
    directions = 2 if module.bidirectional else 1
    out_size = getattr(module, "proj_size", 0) or module.hidden_size
    layer_input = sequence
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            weights = _weights(module, layer, "_reverse" if direction else "")
            h = sequence.new_zeros(out_size)
            c = sequence.new_zeros(module.hidden_size) if module.mode == "LSTM" else None
            steps = range(length) if direction == 0 else range(length - 1, -1, -1)
            out: list[torch.Tensor] = [h] * length
            for t in steps:  # the reverse direction reads the sequence from its last valid step
                h, c = _step(module.mode, layer_input[t], h, c, weights)
                out[t] = h
            outputs.append(torch.stack(out))
            h_n.append(h)
            c_n.append(c)
        # The next layer reads both directions' outputs, concatenated at each step.
        layer_input = torch.cat(outputs, dim=-1)
    return layer_input, torch.stack(h_n), torch.stack(c_n) if module.mode == "LSTM" else None


def _weights(module: nn.RNNBase, layer: int, suffix: str) -> dict[str, torch.Tensor | None]:
    """One layer and direction's weights; a bias is None with ``bias=False``, ``w_hr``
    is None unless the LSTM projects."""
    names = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh", "w_hr": "weight_hr"}
    return {key: getattr(module, f"{name}_l{layer}{suffix}", None) for key, name in names.items()}


def _step(
    mode: str, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, w: dict[str, torch.Tensor | None]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of one layer and direction: ``(h', c')`` from input ``x`` and state ``(h, c)``."""
    gi = F.linear(x, w["w_ih"], w["b_ih"])  # W_i* x + b_i*, all gates at once
    gh = F.linear(h, w["w_hh"], w["b_hh"])  # W_h* h + b_h*
    if mode == "RNN_TANH":  # h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
        return torch.tanh(gi + gh), None
    if mode == "RNN_RELU":  # h' = relu(W_ih x + b_ih + W_hh h + b_hh)
        return torch.relu(gi + gh), None
    if mode == "GRU":  # gates in the order r, z, n
        i_r, i_z, i_n = gi.chunk(3)
        h_r, h_z, h_n = gh.chunk(3)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)  # the reset gate scales W_hn h + b_hn, bias included
        return (1 - z) * n + z * h, None
    if mode == "LSTM":  # gates in the order i, f, g, o
        i, f, g, o = (gi + gh).chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if w["w_hr"] is not None:  # proj_size: h' = W_hr (o * tanh(c')), no bias
            h = F.linear(h, w["w_hr"])
        return h, c
    raise ValueError(f"unknown RNN mode {mode!r}")
