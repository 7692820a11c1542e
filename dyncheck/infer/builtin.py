"""Targets that are themselves one of torch's layers: a factory returning
``nn.LSTM(4, 8, batch_first=True)``, ``nn.TransformerEncoderLayer(16, 2)`` or
``nn.MultiheadAttention(16, 2, kdim=6, vdim=5)``. Their forward is torch's own, whose
source says nothing useful; the inputs follow from the layer's attributes instead
(``input_size``, ``batch_first``, ``d_model``/``embed_dim``, ``kdim``/``vdim``).

Keys and values of attention, and the memory of a decoder, get their own length
``"source"``: a query and the sequence it attends to need not be equally long.
"""

from __future__ import annotations

from torch import nn

from dyncheck import strategies as dst
from dyncheck.infer.layers import _input_for_module
from dyncheck.infer.results import Inferred

__all__ = ["builtin_layer", "infer_builtin_input"]


def builtin_layer(model: nn.Module) -> bool:
    """Whether ``model`` runs torch's own forward (an ``nn.LSTM``, or a subclass that
    does not override ``forward``)."""
    forward = type(model).forward
    return forward is not nn.Module.forward and (forward.__module__ or "").split(".")[0] == "torch"


def _layout(batch_first: bool, length: str = "time") -> tuple[str, str]:
    return ("batch", length) if batch_first else (length, "batch")


def _sequence(batch_first: bool, features: int, length: str = "time") -> tuple:
    return (*_layout(batch_first, length), features)


def _mode(batch_first: bool) -> str:
    return "batch_first=True" if batch_first else "batch_first=False: time-major"


def infer_builtin_input(model: nn.Module, name: str, position: int) -> Inferred | None:
    """A strategy for the required forward argument ``name`` (at ``position``) of a torch
    layer used as the target, or None when its attributes say nothing about it."""
    kind = type(model).__name__
    if isinstance(model, nn.MultiheadAttention):
        sizes = {0: ("time", model.embed_dim, "embed_dim"), 1: ("source", model.kdim, "kdim"),
                 2: ("source", model.vdim, "vdim")}
        if position not in sizes:
            return None
        length, features, attribute = sizes[position]
        return Inferred(
            dst.tensors(shape=_sequence(model.batch_first, features, length)),
            f"the target is {kind}({attribute}={features}, {_mode(model.batch_first)})"
            + ("; keys and values share the length 'source'" if position else ""),
        )
    decoder = _decoder_layer(model)
    if decoder is not None:
        attention = decoder.self_attn
        if position not in (0, 1):
            return None
        length = "time" if position == 0 else "source"
        return Inferred(
            dst.tensors(shape=_sequence(attention.batch_first, attention.embed_dim, length)),
            f"the target is {kind}(d_model={attention.embed_dim}, {_mode(attention.batch_first)})"
            + ("; the memory has its own length 'source'" if position else ""),
        )
    if isinstance(model, nn.Transformer):
        if position not in (0, 1):
            return None
        length = "source" if position == 0 else "time"
        return Inferred(
            dst.tensors(shape=_sequence(model.batch_first, model.d_model, length)),
            f"the target is Transformer(d_model={model.d_model}, {_mode(model.batch_first)}); "
            f"{'the source' if position == 0 else 'the target'} has length {length!r}",
        )
    if isinstance(model, nn.Bilinear) and position == 1:
        return Inferred(dst.tensors(shape=("batch", model.in2_features)),
                        f"the target is Bilinear(in2_features={model.in2_features})")
    if position != 0:
        return None
    found = _input_for_module(model, depth=0)
    if found is None:
        return None
    return Inferred(found.make(found.shape), f"the target is {found.note}", found.dims)


def _decoder_layer(model: nn.Module) -> nn.TransformerDecoderLayer | None:
    if isinstance(model, nn.TransformerDecoderLayer):
        return model
    if isinstance(model, nn.TransformerDecoder) and len(model.layers):
        return model.layers[0]
    return None
