"""Models in the Hugging Face style: ``forward(input_ids=None, attention_mask=None, ...)``.

Every argument of such a forward has a default, so none is required; dyncheck infers the
first one that defaults to ``None`` (``input_ids``) as if it were, also beside the inputs a
Spec gives (``encoder_hidden_states``). Token ids are integers
in ``[0, vocab)``, the vocabulary read from the embedding that consumes them, else from
``get_input_embeddings()`` or ``config.vocab_size``, else (a model that says none) the
size of its smallest ``nn.Embedding``. Beside token ids, ``attention_mask``
(1 = attend, 0 = padding) is drawn as right-padded 0/1 masks of the same shape, and the
sequence length stays within the model's position table (``config.max_position_embeddings``
and its aliases).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import torch
from torch import nn

from dyncheck import strategies as dst
from dyncheck.examples import strategy_arguments
from dyncheck.infer.results import Inferred

__all__ = ["infer_attention_mask", "infer_tokens", "max_positions", "primary_input"]

#: Names of an argument that holds token ids.
TOKENS_NAME = re.compile(r"^(input_ids|token_ids|tokens|input_tokens|ids|decoder_input_ids)$")

#: The config fields that bound the sequence length, as various libraries name them.
_POSITION_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx", "block_size", "max_seq_len",
                    "max_sequence_length", "context_length")


def primary_input(parameters: dict[str, inspect.Parameter], given: Any) -> str | None:
    """The argument to infer when forward requires none: the first that defaults to None
    (``input_ids`` of ``forward(input_ids=None, ...)``), unless the Spec gives it or gives
    embeddings in its place (``inputs_embeds``)."""
    named = [p for p in parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if any(p.default is inspect.Parameter.empty for p in named):
        return None
    first = next((p.name for p in named if p.default is None), None)
    if first is None or first in given or any("embeds" in name for name in given):
        return None
    return first


def _config(model: nn.Module) -> Any:
    return getattr(model, "config", None)


def vocabulary(model: nn.Module) -> tuple[int, str] | None:
    """(vocabulary size, where it was read) from ``get_input_embeddings()`` or
    ``config.vocab_size``, the model's own or, for a model that says neither, that of the
    submodules that do (a Hugging Face model, or a peft one, held by a wrapper of the user's:
    the wrapper has no config, and its smallest table is BERT's two token types), the
    smallest where several do; None when none says either."""
    found = _own_vocabulary(model)
    if found is not None:
        return found
    # the smallest, where several submodules say one: ids below it are ids each of them takes
    held = [
        (vocabulary[0], f"{name}'s {vocabulary[1]}") for name, module in model.named_modules()
        if name and (vocabulary := _own_vocabulary(module)) is not None
    ]
    return min(held, key=lambda found: found[0]) if held else None


def _own_vocabulary(model: nn.Module) -> tuple[int, str] | None:
    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):
        try:
            embedding = getter()
        except Exception:  # a base class's stub raising NotImplementedError
            embedding = None
        if isinstance(embedding, nn.Embedding):
            return embedding.num_embeddings, f"get_input_embeddings() is Embedding(num_embeddings={embedding.num_embeddings})"
    size = getattr(_config(model), "vocab_size", None)
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size, f"config.vocab_size={size}"
    return None


def _smallest_table(model: nn.Module) -> tuple[int, str] | None:
    """(the smallest nn.Embedding's size, where it was read) for a model that says no
    vocabulary (CANINE hashes any code point into its tables): an id below every table's
    size is an id each of them takes. None without an embedding."""
    tables = [(m.num_embeddings, name) for name, m in model.named_modules() if isinstance(m, nn.Embedding)]
    if not tables:
        return None
    size, name = min(tables)
    return size, f"{name} is Embedding(num_embeddings={size}), the model's smallest table (it says no vocabulary)"


def infer_tokens(model: nn.Module, name: str) -> Inferred | None:
    """Integer tokens for an argument named like token ids that no layer was seen to
    consume (the embedding sits behind code the source flow cannot read)."""
    if not TOKENS_NAME.search(name):
        return None
    found = vocabulary(model) or _smallest_table(model)
    if found is None:
        return None
    size, where = found
    return Inferred(
        dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=size - 1),
        f"token ids, by its name: integers in [0, {size}) as {where}",
    )


def infer_attention_mask(
    parameters: dict[str, inspect.Parameter], inputs: dict[str, Any], given: Any
) -> Inferred | None:
    """``attention_mask`` beside batch-first integer tokens (``inputs``: the strategies
    so far), when forward takes it and the Spec does not give it. Never the decoder's
    tokens (``decoder_input_ids``): in Hugging Face's encoder-decoders ``attention_mask``
    is the encoder's (``decoder_attention_mask`` is the decoder's), so beside float
    encoder input (Speech2Text's ``input_features``) it is left at its default."""
    if "attention_mask" not in parameters or "attention_mask" in given:
        return None
    for name, strategy in inputs.items():
        if name.startswith("decoder_"):
            continue
        arguments = strategy_arguments(strategy)
        shape = tuple(arguments.get("shape", ()))
        dtype = arguments.get("dtype", torch.float32)
        if len(shape) == 2 and shape[0] == "batch" and not dtype.is_floating_point and dtype != torch.bool:
            return Inferred(
                dst.attention_masks(batch_size=shape[0], max_length=shape[1]),
                f"the mask of {name}: 1 for tokens, 0 for padding on the right, at least one token a row",
            )
    for name, strategy in inputs.items():
        # Hugging Face's audio inputs, samples (input_values) or frames (input_features):
        # the mask is 1 at each valid one.
        if name not in _AUDIO_INPUTS:
            continue
        arguments = strategy_arguments(strategy)
        shape = tuple(arguments.get("shape", ()))
        steps = [d for d in shape[1:] if d in ("time", "length")]
        if shape[:1] == ("batch",) and len(steps) == 1 and arguments.get("dtype", torch.float32).is_floating_point:
            return Inferred(
                dst.attention_masks(batch_size="batch", max_length=steps[0]),
                f"the mask of {name}: 1 at each valid {'sample' if name == 'input_values' else 'frame'}, 0 at "
                "padding on the right",
            )
    return None


#: The audio inputs of Hugging Face's speech models, whose mask ``attention_mask`` is.
_AUDIO_INPUTS = ("input_values", "input_features")


def max_positions(model: nn.Module) -> tuple[int, str] | None:
    """(the longest sequence the model's position table holds, the config field): the
    model's own config's or, where it has none, the smallest that its submodules' configs
    say (a model a wrapper of the user's holds, as for :func:`vocabulary`: a sequence no
    longer than each of them is one each takes)."""
    # the model's own config, where it has one (its submodules' do not speak for it), else each
    modules = [("", model)] if _config(model) is not None else model.named_modules()
    held = []
    for name, module in modules:
        config = _config(module)
        for field in _POSITION_FIELDS:
            value = getattr(config, field, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                held.append((value, f"{name + '.' if name else ''}config.{field}={value}"))
                break
    return min(held, key=lambda found: found[0]) if held else None
