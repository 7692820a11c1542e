"""Inferring constructor arguments and forward inputs when a model has no Spec.

Constructor: defaults are kept; required size-like arguments (``input_size``,
``hidden_dim``, ``num_classes`` ...) get small, distinct sizes so that shape mix-ups show.

Forward: each required argument is inferred from, in order,
1. its name: ``lengths``-like names get :func:`~dyncheck.strategies.sequence_lengths`
   over the ``"time"`` dimension;
2. the values it can take: an ``Enum`` or ``Literal[...]`` annotation, or the string
   constants it is compared with (``mode == "a"``), give ``controls(choices=...)``;
3. counts: an argument used as ``range(n)`` or ``self.blocks[:n]`` gets small ints;
4. its name or annotation: ``control``/``gate``-like names, ``bool``, ``int``, ``float``
   get :func:`~dyncheck.strategies.controls` with the thresholds it is compared against
   in ``forward``'s source (the range always holds every threshold);
5. the first layer that consumes it in ``forward`` (followed through assignments):
   ``nn.Linear``, ``nn.Conv1d/2d``, ``nn.RNN/LSTM/GRU`` (``batch_first`` respected),
   ``nn.Embedding`` (integer tokens), norms, containers and custom submodules; when
   ``forward`` also takes lengths, a Linear/LayerNorm/BatchNorm1d input is a padded
   sequence and gets a ``"time"`` axis;
6. a count-like name (``n_steps``, ``depth``) for an argument no layer consumes.

Anything it cannot decide raises :class:`Uninferable` with the Spec line to write.
"""

from __future__ import annotations

from dyncheck.infer.constructor import INFERRED_SIZES, infer_init
# _LENGTHS_NAME: padding_invariance recognises lengths arguments by the same names.
from dyncheck.infer.forward import (
    _LENGTHS_NAME, COUNT_RANGE, PACKED_LENGTHS_NOTE, check_forward_arguments, infer_dims, infer_input,
    last_steps_as_lengths, optional_control, packs_as_lengths, sequence_axis,
)
from dyncheck.infer.optional import OptionalInput, optional_inputs, optional_inputs_hint
from dyncheck.infer.results import Inferred, Uninferable
from dyncheck.infer.source import predicate_thresholds
from dyncheck.infer.tokens import infer_attention_mask, primary_input

__all__ = [
    "COUNT_RANGE",
    "INFERRED_SIZES",
    "Inferred",
    "OptionalInput",
    "PACKED_LENGTHS_NOTE",
    "Uninferable",
    "check_forward_arguments",
    "infer_attention_mask",
    "infer_dims",
    "infer_init",
    "infer_input",
    "last_steps_as_lengths",
    "optional_inputs",
    "optional_inputs_hint",
    "optional_control",
    "sequence_axis",
    "packs_as_lengths",
    "predicate_thresholds",
    "primary_input",
]
