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

__all__ = ["naive_rnn", "naive_rnn_rows"]


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


def naive_rnn_rows(
    module: nn.RNNBase, sequences: list[torch.Tensor]
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """:func:`naive_rnn` of each of ``sequences`` (each ``[length, input_size]``), computed
    side by side: one step of every sequence at a time, so a batch of 32 sequences of 64
    steps takes 64 steps of Python, not 2,048.

    Nothing is shared between rows: the linear maps act on each row alone and the gates are
    elementwise; a row's state stops changing after its last step (its ``h_n`` and ``c_n``
    are taken there), and its reverse direction starts from a zero state at its own last
    step, as :func:`naive_rnn` does for that sequence alone. The results are
    :func:`naive_rnn`'s, but for rounding in the last bits (a product over a batch may sum
    in another order)."""
    lengths = [sequence.shape[0] for sequence in sequences]
    if not sequences:
        return []
    first = sequences[0]
    steps_total = max(lengths)
    x = first.new_zeros(len(sequences), steps_total, first.shape[-1])
    for row, sequence in enumerate(sequences):
        x[row, : lengths[row]] = sequence
    # valid[:, t]: which rows still have step t (a [batch, 1] mask per step)
    valid = torch.arange(steps_total, device=first.device)[None, :] < torch.tensor(lengths, device=first.device)[:, None]
    directions = 2 if module.bidirectional else 1
    out_size = getattr(module, "proj_size", 0) or module.hidden_size
    layer_input = x
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            weights = _weights(module, layer, "_reverse" if direction else "")
            h = first.new_zeros(len(sequences), out_size)
            c = first.new_zeros(len(sequences), module.hidden_size) if module.mode == "LSTM" else None
            steps = range(steps_total) if direction == 0 else range(steps_total - 1, -1, -1)
            out: list[torch.Tensor] = [h] * steps_total
            for t in steps:
                new_h, new_c = _step(module.mode, layer_input[:, t], h, c, weights)
                here = valid[:, t : t + 1]
                h = torch.where(here, new_h, h)
                c = torch.where(here, new_c, c) if c is not None else None
                out[t] = h
            outputs.append(torch.stack(out, dim=1))
            h_n.append(h)
            c_n.append(c)
        layer_input = torch.cat(outputs, dim=-1)
    hidden = torch.stack(h_n)  # [layers * directions, batch, out]
    cell = torch.stack(c_n) if module.mode == "LSTM" else None
    return [
        (layer_input[row, :length], hidden[:, row], None if cell is None else cell[:, row])
        for row, length in enumerate(lengths)
    ]


def _weights(module: nn.RNNBase, layer: int, suffix: str) -> dict[str, torch.Tensor | None]:
    """One layer and direction's weights; a bias is None with ``bias=False``, ``w_hr``
    is None unless the LSTM projects."""
    names = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh", "w_hr": "weight_hr"}
    return {key: getattr(module, f"{name}_l{layer}{suffix}", None) for key, name in names.items()}


def _step(
    mode: str, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, w: dict[str, torch.Tensor | None]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of one layer and direction: ``(h', c')`` from input ``x`` and state ``(h, c)``
    (one state, or a batch of them along the first axis)."""
    gi = F.linear(x, w["w_ih"], w["b_ih"])  # W_i* x + b_i*, all gates at once
    gh = F.linear(h, w["w_hh"], w["b_hh"])  # W_h* h + b_h*
    if mode == "RNN_TANH":  # h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
        return torch.tanh(gi + gh), None
    if mode == "RNN_RELU":  # h' = relu(W_ih x + b_ih + W_hh h + b_hh)
        return torch.relu(gi + gh), None
    if mode == "GRU":  # gates in the order r, z, n
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)  # the reset gate scales W_hn h + b_hn, bias included
        return (1 - z) * n + z * h, None
    if mode == "LSTM":  # gates in the order i, f, g, o
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if w["w_hr"] is not None:  # proj_size: h' = W_hr (o * tanh(c')), no bias
            h = F.linear(h, w["w_hr"])
        return h, c
    raise ValueError(f"unknown RNN mode {mode!r}")
