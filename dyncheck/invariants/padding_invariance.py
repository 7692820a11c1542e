"""padding_invariance: a row's result depends only on its own sequence, never on padding.

For a model whose ``forward`` takes a padded batch and its lengths (an argument named like
``lengths``, ``seq_lengths``, ``lens``, inferred or declared in ``Spec(inputs=...)``), or,
without lengths, an attention mask drawn by :func:`~dyncheck.strategies.attention_masks`
(Hugging Face's ``attention_mask``, inferred; right padding: each row's length is its
number of tokens, a row alone gets a mask of ones and extra padding a mask of zeros;
PyTorch's ``key_padding_mask``, drawn with ``marks="padding"``, the other way round), on
every example (the lengths or the mask may be an entry of a dict of inputs,
``batch["lengths"]``, and the other entries are then cut and padded as arguments are):

1. each row's output in the batch equals the output of that sequence run alone: a batch
   of one, trimmed to its length;
2. each row's output is unchanged when 2 steps of other values are appended to the padding
   (the time axis grows by 2, the lengths stay);
3. when the outputs agree, the parameter gradients of the batch's loss (a fixed random
   projection of the valid outputs, each row weighted as it is alone) equal the sum over
   rows of each row's gradients alone, and are unchanged by the extra padding (gradients that differ while the values agree: a surrogate or
   straight-through term that reads the padding).

With ``Spec(padding_value=...)`` the padded steps of the inputs it names are set to that
value before the calls, and the 2 steps appended are of it: a model right only for zero
padding declares so. Undeclared, a failure that goes away when the same example's float
inputs are padded with zeros and its token ids with the embedding's ``padding_idx`` (or 0),
and with other values in their sequences, says so, and names the declaration.

Relative lengths (``sequence_lengths(relative=True)``, SpeechBrain's ``wav_lens``: a
fraction of the padded length, 1.0 for a sequence that fills it) are read as that share of
the padded steps; a row alone gets 1.0, and with the extra padding each length becomes its
steps over the longer padded length, so the rows keep their steps. Lengths that hold
fractions but are not drawn so are a skip that says how to draw them.

Rule 2 is not asked of a model whose lengths are drawn with ``pad_to_longest=True``: it
takes no batch padded past its longest sequence (its mask is as wide as ``lengths.max()``),
and the summary counts the examples. Nor of an example when the model cannot take the longer batch at all: it
raises on it with every row of the full length too (a position table that ends at the
padded length), so the length, not the padding, is what it refuses. Rule 1 (and rule 3's
comparison with the rows alone) is not asked of a row that the model refuses alone when
it is shorter than the shortest padded length the spec allows (a text CNN whose widest
kernel spans 4 steps, for which resolution's size probe made the padded length 4 or more):
trimmed to its length, it is an input the model is never given; rule 2 still holds for it.

Outputs: the batch axis of each output tensor is the one of the batch's size where every
row alone has size 1 and the extra padding changes nothing; when that does not single one
out, the first axis (the second when the first does not have the batch's size). An output axis whose size follows the padded length (the
padded length for the batch, the row's length alone, 2 more with the extra padding) is a
time axis: only a row's valid steps are compared, and only they count in the loss; so is
one a fixed number of steps longer or shorter in all three (a class token put first: the
row's first ``length`` steps are compared; right context consumed: its first
``length - k``). An axis that grows with the padded length at another rate (a strided
convolution over time) is compared on the steps each row has alone: trimmed to its length,
all of a row's frames are its own, and the batch's first as many frames of that row must
equal them (a convolution that pads a row's end reads the batch's padding in its last
frame: right only for zero padding, declared with ``padding_value``). Where no row ran
alone to count them, that output is not compared, the summary says so, and a run where
nothing else was is a skip. An
axis that does none of these (``pad_packed_sequence`` without ``total_length`` cuts it to
the longest sequence of the batch) is a violation of its own.

Inputs: the time axis of each padded argument is the one its strategy names with the
lengths' ``max_length`` dimension (``"time"``), and its batch axis the one named
``"batch"``; for strategies that name no axes, the axis whose size is the padded length
(the batch axis: the one of the batch's size). Arguments with neither are passed as they
are.

The calls run on a float64 copy of the model with float64 inputs (and float64 as torch's
default dtype, so ``torch.zeros(...)`` made inside forward is float64 too), compared with the
tolerances of the model's own dtype (float32's for a float32 model): a batch and a row alone
sum the same numbers in another order, and with inputs in the thousands float32's rounding
alone exceeds float32's tolerances. A model that still cannot run in float64 (a tensor made
with an explicit ``dtype=torch.float32``) runs as it is, and then ``atol`` grows with the
inputs' largest magnitude: float32's rounding in a batch against a row alone does too,
while a padding bug changes results by far more.

All calls go to one model in eval mode: dropout draws masks whose shape follows the batch,
so a row alone could never match the batch in train mode. One model, in this order (the
batch, each row alone, the batch with extra padding), so state carried from one call into
the next shows too.
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from dyncheck.agreement import _scale, default_dtype
from dyncheck.casting import widened
from dyncheck.compare import all_finite, mismatch, tolerances
from dyncheck.diagnose import diagnose
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import (
    Example, strategy_arguments, strategy_child, strategy_entries, strategy_kind, strategy_members,
)
from dyncheck.infer import _LENGTHS_NAME
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants._where import reported
from dyncheck.invariants.batch_invariance import BatchInvariance, pairwise_axes
from dyncheck.invariants.finite import padding_indices
from dyncheck.spec import lengths_slot, padding_slot
from dyncheck.strategies import relative_lengths
from dyncheck.target import UNREAD_POLARITY, Target, _forward_parameters
from dyncheck.ties import ConsistentTies
from dyncheck.tracing import (
    dense, floating_leaves, grads_put_back, inputs_tuple, missing_output, project, projection, tuple_like,
)

__all__ = [
    "EXTRA_STEPS", "PaddingInvariance", "Slot", "gradient_tolerances", "keep_relative_lengths", "lengths_argument",
    "lengths_drawn_with",
    "lengths_relative", "padded_to_longest", "relative_like", "relative_padded", "relative_steps", "slot_value",
]

#: An output leaf inside a cache the model hands back for its next call (``past_key_values``,
#: ``cache_params``, a Hugging Face ``cache``): state for continuing the sequence, not this
#: call's result. A recurrent cache holds the steps the call saw last, padding included
#: (Mamba's ``conv_states``), which a right-padded batch is never continued from.
_CACHE = re.compile(r"\.(past_key_values|cache_params|\w*cache)(?=[.\[]|$)", re.IGNORECASE)

#: Padding steps appended to the time axis for rule 2.
EXTRA_STEPS = 2


#: Where a value sits in a call's arguments: ``(argument, None)`` for an argument,
#: ``(argument, key)`` for an entry of a dict of inputs (``forward(self, batch)`` reading
#: ``batch["lengths"]``, drawn as ``fixed_dictionaries``), and ``(argument, (key, key2))``
#: for an entry of a dict inside it (a multimodal batch's ``batch["text"]["attention_mask"]``).
Slot = tuple[str, Any]


def _keys(slot: Slot) -> tuple[Any, ...]:
    """The keys from the argument down to ``slot``'s value: none for an argument."""
    key = slot[1]
    return () if key is None else key if isinstance(key, tuple) else (key,)


def _slot(name: str, keys: tuple[Any, ...]) -> Slot:
    return (name, None if not keys else keys[0] if len(keys) == 1 else keys)


def slots(target: Target) -> Iterator[tuple[Slot, Any]]:
    """Each argument's slot and strategy, then each entry of a dict of inputs (and of a
    dict inside it)."""

    def inside(name: str, keys: tuple[Any, ...], strategy: Any) -> Iterator[tuple[Slot, Any]]:
        yield _slot(name, keys), strategy
        for key, entry in strategy_entries(strategy).items():
            yield from inside(name, (*keys, key), entry)
        # the members of a tuple of inputs (an LSTM's (h_0, c_0)), by position
        for index, member in enumerate(strategy_members(strategy)):
            yield from inside(name, (*keys, index), member)

    for name, strategy in target.spec.inputs.items():
        yield from inside(name, (), strategy)


def slot_text(slot: Slot) -> str:
    """``lengths``, or ``batch['lengths']`` for an entry of a dict of inputs (``hidden[1]``
    for a member of a tuple)."""
    return slot[0] + "".join(f"[{key!r}]" for key in _keys(slot))


def slot_value(args: Mapping[str, Any], slot: Slot) -> Any:
    """The value at ``slot`` in a call's arguments; None when the call has no such argument,
    no such entry in a dict of inputs, or no such member in a tuple of them."""
    value = args.get(slot[0])
    for key in _keys(slot):
        if type(value) is dict:
            value = value.get(key)
        elif inputs_tuple(value) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def _with(args: Mapping[str, Any], changes: Mapping[Slot, Any]) -> dict[str, Any]:
    """A copy of ``args`` with the values at ``changes``' slots replaced (a dict or tuple of
    inputs is copied, not changed, when an entry of it is replaced)."""
    out = dict(args)
    for slot, value in changes.items():
        out[slot[0]] = _replaced(out[slot[0]], _keys(slot), value)
    return out


def _replaced(container: Any, keys: tuple[Any, ...], value: Any) -> Any:
    """``container`` (a dict or tuple of inputs, nested) with the value at ``keys`` replaced."""
    if not keys:
        return value
    if inputs_tuple(container):
        items = list(container)
        items[keys[0]] = _replaced(items[keys[0]], keys[1:], value)
        return tuple_like(container, items)
    out = dict(container)
    out[keys[0]] = _replaced(container[keys[0]], keys[1:], value)
    return out


def pad_to_longest_why(target: Target) -> str:
    """Why the lengths are drawn with pad_to_longest=True, as the notes of both checks say it:
    inferred (the model raised on another batch, or read the steps past the longest as data)
    or given by the Spec."""
    slot = lengths_argument(target)
    inferred = slot is not None and slot[0] in target.inferred_inputs
    return "as inferred for the model (--dyncheck-explain says why)" if inferred else "as the Spec draws them"


def _extended_raised(layout: _Layout) -> str:
    """Why a raise on the batch with more padding appended is shown with the example as drawn."""
    where = (
        f"the example shown ran; it raised on this check's own call, the same batch with {EXTRA_STEPS} more padded "
        f"steps appended ({layout.padded} to {layout.padded + EXTRA_STEPS}), which the model refuses though it takes "
        f"{layout.padded + EXTRA_STEPS} steps with no padding"
    )
    if layout.mask:
        return (
            f"{where}. A model given batches padded only to their longest sequence cannot be asked this: declare "
            "it, Spec(skip={'padding_invariance': 'batches are padded to their longest sequence'})"
        )
    return (
        f"{where}. A model that takes its padded width from its lengths (lengths.max()) is given batches padded to "
        f"their longest sequence: declare that with sequence_lengths(pad_to_longest=True)"
    )


def _pad_to_longest_note(count: int, why: str) -> str:
    return (
        f"rule 2 (padding appended past the longest sequence) not asked on {count} example{'s' if count != 1 else ''}: "
        f"the lengths are drawn with pad_to_longest=True, the longest always the padded length, {why}"
    )


def padded_to_longest(target: Target) -> Slot | None:
    """Where the lengths are when they are drawn with ``sequence_lengths(pad_to_longest=True)``
    (no batch is padded past its longest sequence); None otherwise."""
    return lengths_drawn_with(target, "pad_to_longest")


def longest_padded(target: Target) -> list[Slot]:
    """Every place lengths drawn with ``sequence_lengths(pad_to_longest=True)`` are: the
    declared (or inferred) lengths, and any other argument or entry of a dict of inputs so
    drawn (pytorch-forecasting's batch pads its encoder and its decoder steps each to their
    longest: a sample alone must keep both)."""

    def padded(strategy: Any) -> bool:
        return strategy_kind(strategy) == "sequence_lengths" and bool(strategy_arguments(strategy).get("pad_to_longest"))

    declared = padded_to_longest(target)
    drawn = [slot for slot, strategy in slots(target) if padded(strategy)]
    return list(dict.fromkeys([declared, *drawn] if declared is not None else drawn))


def lengths_drawn_with(target: Target, option: str) -> Slot | None:
    """Where the lengths are when their ``sequence_lengths()`` is given ``option`` (as
    ``pad_to_longest=True`` or ``descending=True``); None otherwise."""
    slot = lengths_argument(target)
    if slot is None:
        return None
    return slot if strategy_arguments(_strategy(target, slot)).get(option) else None


def declared_padding(target: Target, example: Example) -> Example:
    """``example`` as every check runs it where the spec declares what the padding holds
    (``Spec(padding_value=...)``) beside lengths or a mask: each row's padded steps set to
    it, and token ids drawn at it within a row's length moved to the next id
    (:meth:`_Layout.pad`), as ``padding_invariance`` does. A model that finds its padding by
    value (ESM's ``tokens == padding_idx``) is never handed a row of its pad token as
    sentence: ``finite`` reported the NaN of a row whose every token was padding. Where
    forward takes no lengths or mask, every step is a token (:func:`_without_pad_ids`). The
    example itself where nothing is declared, or nothing can be laid out. An attention mask
    drawn beside lengths is made from them first, declared or not (:func:`lengths_mask`)."""
    example = lengths_mask(target, example)
    if target.spec.padding_value is None:
        return example
    try:
        lengths = lengths_argument(target)
        if lengths is None:
            mask = mask_argument(target)
            if mask is None:
                return _without_pad_ids(target, example)
            if _padding_side(target, mask) != "right":
                return example  # left padding: padding_invariance compares right-padded batches only
            layout = _Layout(target, example, mask, mask=True)
        else:
            layout = _Layout(target, example, lengths)
        if not layout.fill or _fractions(layout, example) is not None:
            return example  # fractions not drawn as relative lengths say no steps
        return Example(layout.pad(example.args), example.seed, example.dims)
    except Exception:  # a layout padding_invariance itself reports on: its check says what
        return example


def mask_beside_lengths(target: Target) -> Slot | None:
    """The attention mask drawn beside the lengths of the same padded batch (both over one
    batch and one time axis, right padded): sentence-transformers' LSTM packs by
    ``sentence_lengths`` and pools by ``attention_mask``, two views of one padding. Drawn
    apart they disagreed, and ``padding_invariance``, padding by the lengths, appended steps
    the mask marked as tokens; the mask is made from the lengths instead
    (:func:`lengths_mask`). None where there is no such pair."""
    lengths = lengths_argument(target)
    if lengths is None or lengths_relative(target, lengths):
        return None
    mask = mask_argument(target)
    if mask is None or mask == lengths or _padding_side(target, mask) != "right":
        return None
    drawn, masked = strategy_arguments(_strategy(target, lengths)), strategy_arguments(_strategy(target, mask))
    if (drawn.get("batch_size", "batch"), drawn.get("max_length", "time")) != (
        masked.get("batch_size", "batch"), masked.get("max_length", "time")
    ):
        return None
    return mask


def lengths_mask(target: Target, example: Example) -> Example:
    """``example`` with the attention mask beside the lengths (:func:`mask_beside_lengths`)
    made from them: each row's first ``length`` steps tokens, the rest padding, in the mask's
    dtype and convention; the example itself where there is no such pair."""
    mask = mask_beside_lengths(target)
    if mask is None:
        return example
    try:
        value = slot_value(example.args, mask)
        lengths = torch.as_tensor(slot_value(example.args, lengths_argument(target))).reshape(-1)
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[0] != lengths.shape[0]:
            return example
        tokens = torch.arange(value.shape[1], device=value.device)[None, :] < lengths.to(value.device)[:, None]
        made = (~tokens if marks_padding(target, mask) else tokens).to(value.dtype)
        return Example(_with(example.args, {mask: made}), example.seed, example.dims)
    except Exception:  # a layout padding_invariance itself reports on
        return example


def _without_pad_ids(target: Target, example: Example) -> Example:
    """``example`` with no token id at a declared padding value, where forward takes no
    lengths or mask (ESM finds its padding by value alone): every step drawn is a token, and a
    pad token is the padding's alone, so an id drawn at it moves to the next (the one before
    at the vocabulary's end). Only a number declared for every input, and only integer
    inputs drawn from more than two values (a flag or a segment id keeps its own)."""
    fill = target.spec.padding_value
    if isinstance(fill, Mapping) or not _whole(fill):
        return example
    changes = {}
    for name, value in example.args.items():
        if not isinstance(value, torch.Tensor) or value.is_floating_point() or value.dtype == torch.bool:
            continue
        arguments = strategy_arguments(target.spec.inputs.get(name))
        shape = arguments.get("shape")
        if not (isinstance(shape, tuple) and "time" in shape):
            continue  # no steps to hold padding: a class id or an index keeps its whole range
        low, high = arguments.get("min_value"), arguments.get("max_value")
        if not (isinstance(low, int) and isinstance(high, int)) or high - low < 2 or not low <= int(fill) <= high:
            continue
        other = int(fill) + 1 if int(fill) + 1 <= high else int(fill) - 1
        changes[name] = torch.where(value == int(fill), torch.full_like(value, other), value)
    return Example({**example.args, **changes}, example.seed, example.dims) if changes else example


def lengths_argument(target: Target) -> Slot | None:
    """Where the lengths of a padded batch are, if anywhere: the argument
    ``Spec(lengths=...)`` declares, else one named like lengths, else an entry of a dict of
    inputs keyed like lengths or drawn by ``sequence_lengths()``, else the one argument drawn
    by ``sequence_lengths()`` (OpenNMT-py's ``src_len``)."""
    if target.spec.lengths is not None:
        declared = lengths_slot(target.spec.lengths)
        if declared is None or declared[0] not in target.spec.inputs:
            return None
        if declared[1] is not None and _strategy(target, declared) is None:
            return None
        return declared
    drawn = []  # arguments drawn by sequence_lengths(), named otherwise
    for slot, strategy in slots(target):
        keys = _keys(slot)
        if not keys:
            if _LENGTHS_NAME.search(slot[0]):
                return slot
            if strategy_kind(strategy) == "sequence_lengths":
                drawn.append(slot)
        elif (isinstance(keys[-1], str) and _LENGTHS_NAME.search(keys[-1])) or strategy_kind(strategy) == "sequence_lengths":
            return slot
    # the one argument drawn by sequence_lengths() (OpenNMT-py's src_len), where none is named
    # like lengths: with two, which one pads the batch is not guessed (a count per sample beside)
    return drawn[0] if len(drawn) == 1 else None


def lengths_relative(target: Target, slot: Slot) -> bool:
    """Whether the lengths at ``slot`` are fractions of the padded length
    (``sequence_lengths(relative=True)``, SpeechBrain's ``wav_lens``)."""
    return bool(strategy_arguments(_strategy(target, slot)).get("relative"))


def relative_padded(target: Target, slot: Slot, dims: Mapping[str, Any]) -> int:
    """The padded length relative lengths at ``slot`` are fractions of: their strategy's
    ``max_length``, as the example's ``dims`` drew it; 0 where they do not say."""
    time = strategy_arguments(_strategy(target, slot)).get("max_length", "time")
    return time if isinstance(time, int) else dims.get(time, 0)


def relative_steps(value: Any, padded: int) -> list[int]:
    """Each row's length in steps: its share of ``padded`` steps (1.0 and more: every step)."""
    return [min(padded, max(0, round(v * padded))) for v in torch.as_tensor(value).reshape(-1).tolist()]


def relative_like(value: Any, steps: Sequence[int], padded: int) -> Any:
    """Relative lengths of ``steps``, fractions of ``padded`` in float32 as
    ``sequence_lengths(relative=True)`` draws them (also in a float64 copy: see
    :func:`keep_relative_lengths`), held as ``value`` holds them (a tensor on its device, of
    its shape, or a list)."""
    if isinstance(value, torch.Tensor):
        one_each = math.prod(value.shape[1:]) == 1  # [batch] or [batch, 1]
        shape = value.shape if value.numel() == len(steps) else (len(steps), *value.shape[1:]) if one_each else (-1,)
        return relative_lengths(steps, padded).to(value.device).reshape(shape)
    return type(value)(step / max(padded, 1) for step in steps)


def keep_relative_lengths(target: Target, source: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` (the example's arguments cast, nudged or redrawn) with relative lengths
    (:func:`lengths_relative`) as ``source`` holds them, on ``args``'s device: they say how
    many steps are the sequence's, not a value to move. Widened to float64, float32's 7/13
    is 7.0000001 steps, which a mask ``arange(T) < rel * T`` (SpeechBrain's
    ``length_to_mask``) reads as 8; float64's own 7/25 is 7.0000000000000009. ``args`` as
    they are for any other lengths."""
    slot = lengths_argument(target) if getattr(target, "spec", None) is not None else None
    if slot is None or not lengths_relative(target, slot):
        return dict(args)
    try:
        kept, now = slot_value(source, slot), slot_value(args, slot)
    except (KeyError, IndexError, TypeError):
        return dict(args)
    if not isinstance(kept, torch.Tensor):
        return dict(args)
    device = now.device if isinstance(now, torch.Tensor) else kept.device
    return _with(args, {slot: kept.to(device, copy=True)})


def mask_argument(target: Target) -> Slot | None:
    """The argument (or entry of a dict of inputs) drawn by
    :func:`~dyncheck.strategies.attention_masks` (Hugging Face's ``attention_mask``,
    inferred or declared), when no lengths say where the padding is: the mask does."""
    return next((slot for slot, strategy in slots(target) if strategy_kind(strategy) == "attention_masks"), None)


def marks_padding(target: Target, slot: Slot) -> bool:
    """Whether the attention mask at ``slot`` is True at padding (``attention_masks(marks="padding")``,
    PyTorch's key padding mask), not at tokens."""
    return strategy_arguments(_strategy(target, slot)).get("marks", "tokens") == "padding"


def mask_lengths(target: Target, slot: Slot, mask: Any) -> torch.Tensor:
    """Each row's length in the attention mask drawn at ``slot``: the tokens it marks."""
    mask = torch.as_tensor(mask)
    return ((mask == 0) if marks_padding(target, slot) else (mask != 0)).sum(-1)


def _strategy(target: Target, slot: Slot) -> Any:
    """The strategy that draws the value at ``slot`` (an entry's, a tuple member's)."""
    strategy = target.spec.inputs.get(slot[0])
    for key in _keys(slot):
        strategy = strategy_child(strategy, key)
    return strategy


#: An argument named as lengths, ``item_seq_len`` too (RecBole's): read only to say why
#: nothing was checked, where forward never reads it.
_UNREAD_LENGTHS_NAME = re.compile(r"(^|_)(lens?|lengths?)$")
#: ... but not a single size: ``max_len``, ``pred_len``, ``horizon_length``.
_ONE_SIZE_NAME = re.compile(r"^(max|min|pred|label|out|output|horizon|target|context|window|patch|chunk|block|n|num)_")


def _padding_side(target: Target, mask: Slot) -> str:
    return strategy_arguments(_strategy(target, mask)).get("padding_side", "right")


class _Layout:
    """Where the batch and time axes of each argument (or entry of a dict of inputs) are,
    and the lengths."""

    def __init__(self, target: Target, example: Example, lengths_slot: Slot, *, mask: bool = False) -> None:
        spec_args = strategy_arguments(_strategy(target, lengths_slot))
        time_dim = spec_args.get("max_length", "time")
        batch_dim = spec_args.get("batch_size", "batch")
        raw = slot_value(example.args, lengths_slot)
        self.target = target
        self.lengths_slot = lengths_slot
        #: how messages name where the lengths are: ``lengths``, ``batch['lengths']``
        self.lengths_name = slot_text(lengths_slot)
        #: the lengths are a right-padded attention mask (1 at tokens, 0 at padding)
        self.mask = mask
        #: ... or a key padding mask (True at padding: attention_masks(marks="padding"))
        self.marks_padding = mask and marks_padding(target, lengths_slot)
        #: the lengths are fractions of the padded length (sequence_lengths(relative=True))
        self.relative = not mask and lengths_relative(target, lengths_slot)
        if mask:
            self.lengths = [int(v) for v in mask_lengths(target, lengths_slot, raw).reshape(-1).tolist()]
            padded = raw.shape[-1]
        elif self.relative:
            padded = relative_padded(target, lengths_slot, example.dims)
            self.lengths = relative_steps(raw, padded)
        else:
            self.lengths = [int(v) for v in torch.as_tensor(raw).reshape(-1).tolist()]
            padded = time_dim if isinstance(time_dim, int) else example.dims.get(time_dim, max(self.lengths, default=0))
        batch = len(self.lengths)
        self.padded = padded
        #: a row shorter than this that the model refuses alone is not compared alone: the
        #: spec allows no shorter padded length
        self.shortest = _shortest(target, time_dim)
        #: the lengths are drawn with pad_to_longest=True: no batch is padded past its
        #: longest sequence, so rule 2 is not asked
        self.pad_to_longest = not mask and bool(spec_args.get("pad_to_longest"))
        #: slot -> (batch axis, time axis); either may be None
        self.axes: dict[Slot, tuple[int | None, int | None]] = {}
        #: slot -> the named shape its strategy draws (where it names one)
        self.named: dict[Slot, tuple[Any, ...]] = {}
        #: other lengths drawn with pad_to_longest=True, over another named axis (a decoder's
        #: beside an encoder's): their axis and each row's own steps, which a row alone keeps
        self.beside: list[tuple[Any, list[int]]] = []
        for other in longest_padded(target):
            other_dim = strategy_arguments(_strategy(target, other)).get("max_length")
            steps = slot_value(example.args, other)
            if other != lengths_slot and isinstance(other_dim, str) and other_dim != time_dim and isinstance(
                steps, torch.Tensor
            ) and steps.dim() == 1:
                self.beside.append((other_dim, [int(v) for v in steps.tolist()]))
        #: slot -> the other axes its shape names as the time axis (a dense graph's adjacency,
        #: ``[batch, nodes, nodes]``; pairwise features): trimmed and extended with the first
        self.more_time: dict[Slot, list[int]] = {}
        if mask:
            self.axes[lengths_slot] = (0, 1)
        for slot, strategy in slots(target):
            value = slot_value(example.args, slot)
            if slot == lengths_slot or not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            shape = strategy_arguments(strategy).get("shape")
            if isinstance(shape, (tuple, list)) and len(shape) == value.dim():
                self.named[slot] = tuple(shape)
                batch_axis = shape.index(batch_dim) if batch_dim in shape else None
                time_axis = shape.index(time_dim) if time_dim in shape else None
                more = [axis for axis, dim in enumerate(shape) if dim == time_dim and axis != time_axis]
                if more:
                    self.more_time[slot] = more
            else:
                time_axis = _axis_of_size(value, padded, avoid=0 if value.shape[0] == batch else None)
                batch_axis = _axis_of_size(value, batch, avoid=time_axis)
            self.axes[slot] = (batch_axis, time_axis)
        #: an attention mask beside the lengths, made from them (:func:`mask_beside_lengths`):
        #: the steps appended to it are padding, and with no padding at all it is all tokens
        self.companion = None if mask else mask_beside_lengths(target)
        #: slot -> the value its padded steps hold (Spec(padding_value=...)): set before the
        #: calls, and appended for rule 2 instead of other values
        self.fill: dict[Slot, Any] = {}
        declared = target.spec.padding_value
        # (argument, keys) -> the Spec(padding_value={...}) key that names it
        named = {padding_slot(key): key for key in declared} if isinstance(declared, Mapping) else {}
        for slot in self.padded_slots():
            key = named.pop((slot[0], _keys(slot)), None)
            if key is not None:
                self.fill[slot] = declared[key]
            elif declared is not None and not isinstance(declared, Mapping):
                self.fill[slot] = declared
        #: the Spec(padding_value={...}) keys that name no padded input here
        self.unfilled = list(named.values())

    def padded_slots(self) -> list[Slot]:
        """The inputs with a batch and a time axis, the lengths (or mask) aside."""
        return [
            slot for slot, (batch_axis, time_axis) in self.axes.items()
            if slot not in (self.lengths_slot, self.companion) and batch_axis is not None and time_axis is not None
        ]

    def filled(self, fill: dict[Slot, Any]) -> _Layout:
        """This layout with the padded steps of the inputs in ``fill`` set to their values."""
        out = copy.copy(self)
        out.fill = dict(fill)
        return out

    def pad(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``args`` with each row's steps past its length set to the declared padding value.
        Token ids drawn at that value within a row's length move to the next id (the one
        before at the vocabulary's end): a declared pad token is the padding's alone (a
        tokenizer keeps it out of sentences), and a model that finds its padding by value
        (``src != pad_idx``) takes such a token for padding. Integer inputs drawn from two
        values (a flag, a segment id) keep theirs."""
        changes: dict[Slot, Any] = {}
        for slot, fill in self.fill.items():
            batch_axis, time_axis = self.axes[slot]
            value = slot_value(args, slot).clone()
            if not value.is_floating_point() and value.dtype != torch.bool and _whole(fill):
                low, high = _int_bounds(self.target, slot, value)
                drawn = strategy_arguments(_strategy(self.target, slot))
                two_valued = isinstance(drawn.get("min_value"), int) and isinstance(drawn.get("max_value"), int) and (
                    drawn["max_value"] - drawn["min_value"] < 2
                )
                other = int(fill) + 1 if int(fill) + 1 <= high else int(fill) - 1
                # ids from a vocabulary only: a flag or segment id drawn from 0 and 1 holds 0 in its sequences too
                if not two_valued and low <= other <= high:
                    value = torch.where(value == fill, torch.full_like(value, other), value)
            for row, length in enumerate(self.lengths):
                for axis in (time_axis, *self.more_time.get(slot, ())):
                    steps = value.shape[axis] - length
                    if steps > 0 and row < value.shape[batch_axis]:
                        value.narrow(batch_axis, row, 1).narrow(axis, length, steps).fill_(fill)
            changes[slot] = value
        return _with(args, changes)

    def row(self, args: Mapping[str, Any], row: int) -> dict[str, Any]:
        """The arguments of one row alone: a batch of one, trimmed to its length."""
        length = self.lengths[row]
        changes: dict[Slot, Any] = {}
        for slot, (batch_axis, time_axis) in self.axes.items():
            value = slot_value(args, slot)
            if batch_axis is not None:
                value = value.narrow(batch_axis, row, 1)
            if time_axis is not None:
                for axis in (time_axis, *self.more_time.get(slot, ())):
                    value = value.narrow(axis, 0, length)
            for other_dim, steps in self.beside:  # another axis padded to its longest: the row's own steps
                for axis, dim in enumerate(self.named.get(slot, ())):
                    if dim == other_dim and row < len(steps):
                        value = value.narrow(axis, 0, steps[row])
            changes[slot] = value
        if self.relative:  # the whole of the row's own steps
            changes[self.lengths_slot] = relative_like(slot_value(args, self.lengths_slot), [length], length)
        elif not self.mask:  # a mask, trimmed above, is all tokens
            lengths = slot_value(args, self.lengths_slot)
            changes[self.lengths_slot] = (
                lengths[row:row + 1] if isinstance(lengths, torch.Tensor) else type(lengths)([lengths[row]])
            )
        return _with(args, changes)

    def length_words(self, row: int) -> str:
        """``length 3 of 5 padded steps``, with the relative length that says so where the
        lengths are fractions."""
        words = f"length {self.lengths[row]} of {self.padded} padded steps"
        if self.relative:
            words += f", {self.lengths_name} {self.lengths[row] / max(self.padded, 1):.4g}"
        return words

    def extended(self, args: Mapping[str, Any], generator: torch.Generator) -> dict[str, Any]:
        """The arguments with EXTRA_STEPS steps of other values appended to the padding (the
        mask, if that is where the padding is, gets EXTRA_STEPS more steps of padding)."""
        changes: dict[Slot, Any] = {}
        for slot, (_, time_axis) in self.axes.items():
            if time_axis is None:
                continue
            value = slot_value(args, slot)
            for axis in (time_axis, *self.more_time.get(slot, ())):
                shape = list(value.shape)
                shape[axis] = EXTRA_STEPS
                if (self.mask and slot == self.lengths_slot) or slot == self.companion:
                    pads = self.marks_padding if slot == self.lengths_slot else marks_padding(self.target, slot)
                    more = (torch.ones if pads else torch.zeros)(shape, dtype=value.dtype, device=value.device)
                elif slot in self.fill:
                    more = torch.full(shape, self.fill[slot], dtype=value.dtype, device=value.device)
                else:
                    more = _garbage(value, axis, generator)
                value = torch.cat([value, more], dim=axis)
            changes[slot] = value
        if self.relative:  # the same steps, of a longer padded length
            changes[self.lengths_slot] = relative_like(
                slot_value(args, self.lengths_slot), self.lengths, self.padded + EXTRA_STEPS
            )
        return _with(args, changes)

    def full_length(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``args`` (extended) with every row as long as the padded length plus EXTRA_STEPS:
        no padding at all."""
        lengths = slot_value(args, self.lengths_slot)
        if self.mask:
            return _with(args, {self.lengths_slot: (torch.zeros_like if self.marks_padding else torch.ones_like)(lengths)})
        longest = self.padded + EXTRA_STEPS
        if self.relative:
            return _with(args, {self.lengths_slot: relative_like(lengths, [longest] * len(self.lengths), longest)})
        changes = {self.lengths_slot: (
            torch.full_like(lengths, longest) if isinstance(lengths, torch.Tensor) else type(lengths)([longest] * len(lengths))
        )}
        if self.companion is not None:
            mask = slot_value(args, self.companion)
            changes[self.companion] = (torch.zeros_like if marks_padding(self.target, self.companion) else torch.ones_like)(mask)
        return _with(args, changes)


#: Why a row differs alone when the model draws random numbers in eval mode.
_DRAWS = (
    "The model draws random numbers in eval mode (another seed changes the batch's output), and a row's "
    "numbers depend on the batch it is in (torch.randn_like(h) over a batch of another shape, or noise scaled "
    "over the batch): the difference may be that noise, not the padding. If sampling at inference is by design, "
    "declare Spec(skip={'padding_invariance': ...}); else draw only in training (if self.training: ...)."
)


class _NotCompared(Exception):
    """A quiet second look at a failing example (see PaddingInvariance._compare) compared
    nothing: it proves nothing either way."""


class _NaN(Exception):
    """The model's own dtype gave NaN (outputs or gradients) on this example: no difference
    can be read from it, and ``finite`` is the check that reports it."""


_NAN = "the outputs or gradients hold NaN (finite reports where it is made): nothing to compare"


def _any_nan(tensors: Iterable[torch.Tensor | None]) -> bool:
    return any(t is not None and t.is_floating_point() and bool(torch.isnan(t).any()) for t in tensors)


class _Float64Unfit(Exception):
    """The float64 copy's batch gave NaN or inf (outputs or gradients): a model that pins a
    step to float32 (``softmax(..., dtype=torch.float32)`` after an additive mask of
    ``torch.finfo(dtype).min``, as Longformer does) turns float64's smallest number into
    -inf there, and a fully masked row into NaN, which it never meets in its own dtype. The
    comparison then runs in the model's own dtype; if that is not finite either, ``finite``
    is the check that says so."""


def _shortest(target: Target, time_dim: Any) -> int:
    """The shortest padded length ``time_dim`` may take under the spec (1 when it cannot
    be read: every row then runs alone)."""
    from dyncheck.strategies import DEFAULT_DIMS

    if isinstance(time_dim, int):
        return 1
    bounds = target.spec.dims.get(time_dim, DEFAULT_DIMS.get(time_dim))
    if isinstance(bounds, int):
        return max(1, bounds)
    if isinstance(bounds, tuple) and len(bounds) == 2:
        return max(1, bounds[0])
    elements = getattr(bounds, "elements", None)  # st.sampled_from(sizes), as the size probe gives
    if isinstance(elements, Sequence) and elements and all(isinstance(e, int) for e in elements):
        return max(1, min(elements))
    return 1


def _axis_of_size(value: torch.Tensor, size: int, avoid: int | None) -> int | None:
    candidates = [a for a in range(value.dim()) if value.shape[a] == size and a != avoid]
    return candidates[0] if candidates else None


def _garbage(value: torch.Tensor, axis: int, generator: torch.Generator) -> torch.Tensor:
    """EXTRA_STEPS steps along ``axis`` of values unlike the padding: random, in the range
    of ``value`` for integers (tokens stay valid), large for floats."""
    shape = list(value.shape)
    shape[axis] = EXTRA_STEPS
    if value.dtype == torch.bool:
        return (torch.rand(shape, generator=generator) < 0.5).to(value.device)
    if value.is_floating_point():
        scale = 1.0 + (float(value.detach().abs().max()) if value.numel() else 0.0)
        return (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(value.device, value.dtype)
    low = int(value.min()) if value.numel() else 0
    high = int(value.max()) if value.numel() else 0
    return torch.randint(low, high + 1, shape, generator=generator).to(value.device, value.dtype)


def _float64_copy(model: nn.Module, args: dict[str, Any]) -> tuple[nn.Module, dict[str, Any], torch.dtype | None]:
    """``model`` and ``args`` in float64, and the model's own floating dtype (None when it has
    none, or is float64 already: then both are returned as they are).

    The comparisons run in float64 with the tolerances of the model's own dtype: a batch
    and a row alone add up the same numbers in a different order, and with inputs in the
    thousands float32's rounding alone would exceed float32's tolerances, while a padding
    bug is far larger."""
    native = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if native is None or native == torch.float64 or native.is_complex:
        return model, args, None
    return widened(model, torch.float64), {name: _to_float64(value) for name, value in args.items()}, native


def _to_float64(value: Any) -> Any:
    """A floating tensor in float64; a dict of inputs entry by entry; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float64)
    if type(value) is dict:
        return {key: _to_float64(item) for key, item in value.items()}
    return value


def _input_scale(args: Mapping[str, Any]) -> float:
    """The largest finite magnitude among the floating arguments and the entries of dicts
    of inputs (at least 1)."""
    def values(value: Any) -> Iterator[Any]:
        if type(value) is dict:
            for item in value.values():
                yield from values(item)
        else:
            yield value

    return _scale(*(v for v in values(dict(args)) if isinstance(v, torch.Tensor) and v.is_floating_point()))


def _batch_axis(
    value: torch.Tensor, batch: int, alone: Sequence[torch.Tensor] = (), extended: torch.Tensor | None = None
) -> int | None:
    """The batch axis of an output: the one axis of the batch's size where every row alone
    has size 1 and the extra padding changes nothing (so a time-major output whose padded
    length equals the batch size is read right); else the first of its first two axes of
    the batch's size where each row alone has size 1. An axis a row alone keeps at the
    batch's size is none (every row's valid steps concatenated, ``[sum(lengths), tags]``,
    whose tags number the batch's size: flair's tagger without a CRF)."""
    candidates = [
        axis for axis in range(value.dim())
        if value.shape[axis] == batch
        and all(a.dim() == value.dim() and a.shape[axis] == 1 for a in alone)
        and (extended is None or (extended.dim() == value.dim() and extended.shape[axis] == batch))
    ]
    if alone and len(candidates) == 1:
        return candidates[0]
    for axis in (0, 1):
        if value.dim() > axis and value.shape[axis] == batch and all(
            a.dim() != value.dim() or a.shape[axis] == 1 for a in alone
        ):
            return axis
    return None


def _valid(
    value: torch.Tensor, batch_axis: int, row: int, time_axes: list[tuple[int, Any]], length: int,
    index: int | None = None,
) -> torch.Tensor:
    """Row ``row`` of an output (at ``index`` along its batch axis: 0 for a row alone), its
    time axes trimmed to the row's valid steps. An axis ``offset`` steps longer than the
    padded length (a class token put first) keeps the row's first ``length`` steps; one
    shorter (right context consumed) its first ``length + offset``; one at another rate
    (``offset`` a dict: row -> the steps the row alone has there) its first that many."""
    for axis, offset in time_axes:
        steps = offset.get(row, 0) if isinstance(offset, dict) else max(0, length + min(offset, 0))
        value = value.narrow(axis, 0, min(steps, value.shape[axis]))
    return value.select(batch_axis, row if index is None else index)


def _padding_candidates(context: Context, example: Example, layout: _Layout) -> dict[Slot, tuple[Any, str]]:
    """The padding each padded input is most likely given, and why: 0.0 for float inputs
    (``pad_sequence``'s and feature extractors' padding); for token ids, the ``padding_idx``
    of the model's embeddings when they name one (its embedding is zeros), else 0."""
    indices = set(padding_indices(context.prototype()))
    found: dict[Slot, tuple[Any, str]] = {}
    for slot in layout.padded_slots():
        value = slot_value(example.args, slot)
        if not isinstance(value, torch.Tensor) or value.dtype == torch.bool:
            continue
        if value.is_floating_point():
            found[slot] = (0.0, "0.0")
        elif len(indices) == 1:
            (index,) = indices
            found[slot] = (index, f"{index} (the padding_idx of the model's embedding)")
        else:
            found[slot] = (0, "0")
    return found


def _whole(value: Any) -> bool:
    """Whether ``value`` is a whole number (``0``, ``0.0``, numpy's ints), as a token id is."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return float(value) == int(value)
    except (ValueError, OverflowError):  # nan, inf
        return False


def _int_bounds(target: Target, slot: Slot, value: torch.Tensor) -> tuple[int, int]:
    """The range an integer input is drawn from: its strategy's bounds, else the example's."""
    arguments = strategy_arguments(_strategy(target, slot))
    low, high = arguments.get("min_value"), arguments.get("max_value")
    if not isinstance(low, int):
        low = int(value.min()) if value.numel() else 0
    if not isinstance(high, int):
        high = int(value.max()) if value.numel() else 0
    return low, high


def _padding_hint(padding: dict[Slot, tuple[Any, str]]) -> str:
    """The failure's last line when the padding values ``padding`` make it go away."""
    values = {value for value, _ in padding.values()}
    steps = ", ".join(f"{slot_text(slot)} set to {said}" for slot, (_, said) in padding.items())
    holds = repr(next(iter(values))) if len(values) == 1 else "those values"
    declared = (
        f"Spec(padding_value={next(iter(values))!r})" if len(values) == 1
        else "Spec(padding_value={" + ", ".join(f"{slot_text(s)!r}: {v!r}" for s, (v, _) in padding.items()) + "})"
    )
    where = (
        "pad_sequence's default, a feature extractor's" if all(isinstance(v, float) for v in values)
        else "pad_sequence's default, a tokenizer's pad token"
    )
    return (
        f"With every padded step of {steps} nothing differs, here and with other values in the sequences: the "
        f"model reads its padding, and is right only when the padding holds {holds}. If it is only ever given "
        f"batches padded so ({where}), declare it: {declared}."
    )


def _own_steps(time_axes: list[tuple[int, Any]], row: int) -> str:
    """How many steps of each axis at another rate (or over other lengths' steps) are
    compared for ``row``: the ones it has alone."""
    counted = [(axis, offset.get(row, 0)) for axis, offset in time_axes if isinstance(offset, dict)]
    return "".join(
        f" (axis {axis}: its first {steps} step{'s' if steps != 1 else ''}, as many as the row has alone there)"
        for axis, steps in counted
    )


def _lengths_left_at_default(target: Target) -> str | None:
    """The name of an optional forward argument named like lengths that the run leaves at
    its default (``lengths=None``), or None."""
    parameters = _forward_parameters(target.model_class) if target.model_class is not None else {}
    return next((
        name for name, parameter in parameters.items()
        if _LENGTHS_NAME.search(name) and parameter.default is None and name not in target.spec.inputs
    ), None)


def _is_float(t: torch.Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()


class PaddingInvariance(Invariant):
    name = "padding_invariance"
    summary = (
        "each row of a padded batch gives the output and gradients of its sequence run alone "
        "(a batch of one, trimmed to its length), and extra padding changes nothing"
    )

    def applies_to(self, target: Target) -> str | None:
        found = lengths_argument(target)
        if found is None:
            mask = mask_argument(target)
            if mask is None:
                for slot, strategy in slots(target):
                    kind = strategy_kind(strategy)
                    if kind in ("packed_sequences", "sequence_lists"):
                        held = "a PackedSequence" if kind == "packed_sequences" else "a list of sequences"
                        return (
                            f"{slot_text(slot)} is {held} ({kind}), which holds no padding for forward to read "
                            "(batch_invariance compares each sequence run alone with the batch)"
                        )
                unread = next((
                    (name, why) for name, why in target.inferred_inputs.items() if UNREAD_POLARITY in why
                ), None)
                if unread is not None:
                    # a mask found, whose padding the model did not ignore either way: say so
                    return f"forward takes no lengths argument, and {unread[0]} is {unread[1]}"
                from dyncheck.target import CONTROL_KEPT

                kept = next((k for k in target.kept_defaults.items() if not k[1].startswith(CONTROL_KEPT)), None)
                if kept is not None and " raised (" in kept[1]:
                    # torchtune's mask is [b, s, s]: a [batch, time] mask raised, so advising one
                    # would crash every check
                    return (
                        f"forward's {kept[0]} is left at its default None: {kept[1]}; padding_invariance needs "
                        f"lengths or a [batch, time] padding mask, and {kept[0]} takes neither"
                    )
                if kept is not None:
                    # x-transformers' mask=None that an all-True mask does not leave as it is
                    drawn = "sequence_lengths()" if _LENGTHS_NAME.search(kept[0]) else "attention_masks(...)"
                    return (
                        f"forward's {kept[0]} is left at its default None: {kept[1]}; if it marks the padding of a "
                        f"batch, give it in Spec(inputs={{{kept[0]!r}: {drawn}}}) to check padding"
                    )
                left = _lengths_left_at_default(target)
                if left is not None:
                    # SpeechBrain's ECAPA_TDNN.forward(x, lengths=None): said as it is
                    return (
                        f"forward's {left} is left at its default None, so no batch is drawn padded; give it in "
                        f"Spec(inputs={{{left!r}: ...}}) with the padded input beside it to check padding"
                    )
                unread_lengths = next((
                    name for name, why in target.inferred_inputs.items()
                    if why.startswith("forward never reads it") and _UNREAD_LENGTHS_NAME.search(name)
                    and not _ONE_SIZE_NAME.search(name)
                ), None)
                if unread_lengths is not None:
                    # GRU4Rec's forward(item_seq, item_seq_len) that takes out[:, -1] and never
                    # reads the lengths: the very bug this check finds, not a model without any
                    return (
                        f"forward never reads its {unread_lengths} (passed as None), and takes no other lengths or "
                        f"mask: if it holds each row's length of a padded batch, a row's output then depends on its "
                        f"padding; declare Spec(lengths={unread_lengths!r}) to check it"
                    )
                if target.spec.padding_value is not None:
                    # ESM finds its padding by value alone: no row's length is said anywhere
                    return (
                        f"forward takes no lengths and no attention mask, only padding found by value "
                        f"(Spec(padding_value={target.spec.padding_value!r})): padding_invariance needs each row's "
                        "length to pad and trim by; check a wrapper whose forward(tokens, lengths) sets every step "
                        "past a row's length to the padding value and calls the model"
                    )
                return (
                    "forward takes no lengths argument (named like lengths, seq_lengths or lens; "
                    "declare another with Spec(lengths=...)) and no attention mask drawn by attention_masks()"
                )
            if _padding_side(target, mask) != "right":
                return (
                    f"{slot_text(mask)} is padded on the left (attention_masks(padding_side='left')): a row alone, "
                    "trimmed to its tokens, starts at another position than in the batch; padding_invariance "
                    "compares right-padded batches"
                )
            found = mask
        # Beside the lengths (or mask): another argument, or another entry of their dict.
        if not any(slot != found and not strategy_entries(strategy) for slot, strategy in slots(target)):
            return f"forward takes {slot_text(found)} but no padded batch beside it"
        return None

    def check(self, context: Context, example: Example) -> None:
        lengths = lengths_argument(context.target)
        if lengths is None:
            layout = _Layout(context.target, example, mask_argument(context.target), mask=True)
        else:
            layout = _Layout(context.target, example, lengths)
        if layout.unfilled:
            context.note("unfilled", lambda count: (
                f"Spec(padding_value=...) names {', '.join(layout.unfilled)}, which {'has' if len(layout.unfilled) == 1 else 'have'} "
                f"no padded steps beside {layout.lengths_name}: nothing set there ({count} example{'s' if count != 1 else ''})"
            ))
        fractions = _fractions(layout, example)
        if fractions is not None:
            return context.nothing_to_compare(fractions)
        if not any(length > 0 for length in layout.lengths):
            return context.nothing_to_compare(_no_rows(layout.lengths_name), drawn=True)
        try:
            self._compare(context, example, layout)
            return
        except InvariantViolation as exc:
            found = exc
        if self._tie_order(context, example, layout):
            context.note("tie_order", lambda count: (
                f"on {count} example{'s' if count != 1 else ''} the model's top-k, sort or argmax picked among equal "
                "values in another order with the padding than without (torch leaves that order to the kernel, which "
                "changes it with the length); compared with ties broken alike, first position first and again last "
                "position first, the rows agreed"
            ))
            return
        details = list(found.details)
        if layout.mask and found.headline.startswith("Row ") and reported():
            # pmixer's SASRec: correct for left padding, reading its last position, and drawn
            # right-padded here
            details.append(
                f"{layout.lengths_name} was drawn padded on the right (tokens first): if the model is only given "
                "batches padded on the left (padding first, its last position every row's last token), declare "
                "attention_masks(padding_side='left'), which padding_invariance does not compare (a row alone "
                "would start at another position)"
            )
        if layout.fill:
            values = sorted({repr(v) for v in layout.fill.values()})
            details.append(
                f"(the padded steps of {', '.join(slot_text(s) for s in layout.fill)} were set to "
                f"{', '.join(values)}, as Spec(padding_value=...) declares, before the calls)"
            )
        elif reported():
            padding = _padding_candidates(context, example, layout)
            if padding and self._padding_agrees(context, example, layout, padding):
                details.append(_padding_hint(padding))
        if reported() and BatchInvariance._draws(context, context.fresh_model().eval(), example):
            details.append(_DRAWS)
        # One raise statement: Hypothesis tells failures apart by where they are raised.
        raise InvariantViolation(found.headline, details, path=found.path)

    def _tie_order(self, context: Context, example: Example, layout: _Layout) -> bool:
        """Whether a difference is the order of a tie (:mod:`dyncheck.ties`): every call
        again with ties broken by position, first position first and then last first, and
        the rows agree both times. Only for a padded batch whose every selection picks along
        its steps, ``[batch, ..., time]`` at the padded length, and that, with ties broken
        last position first (so a padding step that ties with a valid one is picked), picks
        no padding step while a valid step of its row goes unpicked: a padding score that
        ties with valid ones (masked to 0, not ``-inf``) stays a finding, and so does any
        selection dyncheck cannot place (a sort, an axis a token was added to)."""
        ties = ConsistentTies(last=True)
        padded = Example(layout.pad(example.fresh_args()), example.seed, example.dims)
        try:
            with ties, torch.no_grad():
                context.run(context.fresh_model().eval(), padded, record=False, grad=False)
        except ModelError:
            return False
        if not ties.picks or not all(self._picks_no_padding(pick, layout) for pick in ties.picks):
            return False
        for last in (False, True):
            try:
                with ConsistentTies(last):
                    self._compare(context, example, layout, quiet=True)
            except (InvariantViolation, ModelError, _NotCompared):
                return False
        return True

    @staticmethod
    def _picks_no_padding(pick: tuple[str, tuple[int, ...], int | None, torch.Tensor | None], layout: _Layout) -> bool:
        """Whether one selection of the padded batch picked along its steps
        (``[batch, ..., padded length]``, the batch first) and took no padding step of a row
        while a valid step of that row went unpicked."""
        _, shape, dim, picked = pick
        lengths = layout.lengths
        if picked is None or dim is None or dim == 0 or len(shape) < 2:
            return False
        if shape[0] != len(lengths) or shape[dim] != layout.padded:
            return False
        picked = picked.movedim(dim, -1)
        for row, length in enumerate(lengths):
            chosen = picked[row]
            valid = (chosen < length).sum(-1)
            if bool(((chosen >= length).any(-1) & (valid < min(length, chosen.shape[-1]))).any()):
                return False
        return True

    def _padding_agrees(
        self, context: Context, example: Example, layout: _Layout, padding: dict[Slot, tuple[Any, str]]
    ) -> bool:
        """Whether the example breaks nothing with the padded steps of each input in
        ``padding`` set to its value there, and neither does it with random values in their
        sequences, none of them the padding value (a shrunk example's sequences are often
        zeros themselves, and a mean over zero padding then agrees too). Token ids at a
        padding value move to the next id first (see :meth:`_Layout.pad`)."""
        filled = layout.filled({slot: value for slot, (value, _) in padding.items()})
        generator = torch.Generator().manual_seed(example.seed)
        changes = {}
        for slot, (fill, _) in padding.items():
            value = slot_value(example.args, slot)
            if value.is_floating_point():
                scale = max(1.0, float(value.detach().abs().max()) if value.numel() else 1.0)
                other = torch.randn(value.shape, generator=generator, dtype=torch.float64) * scale
            else:
                low, high = _int_bounds(context.target, slot, value)
                choices = [v for v in range(low, min(high, low + 1000) + 1) if v != fill]
                if not choices:
                    return False  # no other value to put in the sequences
                picks = torch.randint(len(choices), value.shape, generator=generator)
                other = torch.tensor(choices)[picks]
            changes[slot] = other.to(value.device, value.dtype)
        varied = Example(_with(example.args, changes), example.seed, example.dims)
        try:
            self._compare(context, example, filled, quiet=True)
            self._compare(context, varied, filled, quiet=True)
        except (InvariantViolation, ModelError, _NotCompared):
            return False
        return True

    def _compare(self, context: Context, example: Example, layout: _Layout, *, quiet: bool = False) -> None:
        """Rules 1 to 3 on ``example`` (see _check). ``quiet``: a second look at a failing
        example, which records no path and no note, and raises _NotCompared where it would
        compare nothing. NaN in the model's own dtype compares nothing (see _NaN)."""
        try:
            self._in_either_dtype(context, example, layout, quiet=quiet)
        except _NaN:
            if quiet:
                raise _NotCompared from None
            context.nothing_to_compare(_NAN)

    def _in_either_dtype(self, context: Context, example: Example, layout: _Layout, *, quiet: bool) -> None:
        """_check on a float64 copy, or, where that cannot serve, in the model's own dtype."""
        model, args, native = _float64_copy(context.fresh_model().eval(), layout.pad(example.fresh_args()))
        args = keep_relative_lengths(context.target, example.args, args)
        with default_dtype(torch.float64 if native is not None else None):
            try:
                self._check(context, example, layout, model, args, native, slack=1.0, quiet=quiet)
                return
            except ModelError as exc:
                # Only the first call falls back: a row alone that raises is the model's own.
                if native is None or not getattr(exc, "first_call", False):
                    raise
            except _Float64Unfit:
                pass
        # The model cannot run in float64 (a float32 tensor made inside forward with an
        # explicit dtype), or gives NaN/inf there (see _Float64Unfit): compare in its own
        # dtype, as it is, with atol on the inputs' scale.
        model, args = context.fresh_model().eval(), layout.pad(example.fresh_args())
        self._check(context, example, layout, model, args, None, slack=_input_scale(args), quiet=quiet)

    def _check(
        self,
        context: Context,
        example: Example,
        layout: _Layout,
        model: nn.Module,
        args: dict[str, Any],
        native: torch.dtype | None,
        *,
        slack: float,
        quiet: bool = False,
    ) -> None:
        lengths, padded, batch = layout.lengths, layout.padded, len(layout.lengths)
        generator = torch.Generator().manual_seed(example.seed)

        def run(arguments: dict[str, Any], record: bool = False) -> Any:
            return context.run(
                model, Example(arguments, example.seed, example.dims), record=record, grad=False
            )

        try:
            whole_trace = run(args, record=not quiet)
        except ModelError as exc:
            exc.first_call = True  # type: ignore[attr-defined]
            raise
        whole = dict(floating_leaves(whole_trace.output))
        if native is not None and not all_finite(whole.values()):
            raise _Float64Unfit
        if native is None and _any_nan(whole.values()):
            raise _NaN
        rows = [row for row in range(batch) if lengths[row] > 0]
        alone: dict[int, dict[str, torch.Tensor]] = {}
        # the path each other call took (a row alone, the extra padding), told when it is not the batch's
        paths: dict[Any, tuple[str, ...]] = {}

        def parted(key: Any, words: str) -> list[str]:
            other = paths.get(key)
            if other is None or list(dict.fromkeys(other)) == list(dict.fromkeys(whole_trace.path)):
                return []  # the same modules, run another number of times (a cell stepped over time)
            return [
                f"paths: the batch took {context.describe_path(whole_trace.path)}; {words} took "
                f"{context.describe_path(other)} (a branch decided on the padded length, or on the other rows)"
            ]
        for row in rows:
            try:
                alone_trace = run(layout.row(args, row))
                alone[row] = dict(floating_leaves(alone_trace.output))
                paths[row] = alone_trace.path
            except ModelError:
                if lengths[row] >= layout.shortest:
                    raise
                # Shorter than any padded length the spec allows, and refused alone (a
                # convolution wider than it): not an input the model is given, so only the
                # extra padding is asked of this row.
        extended: dict[str, torch.Tensor] | None = None
        try:
            if layout.pad_to_longest:
                if not quiet:
                    why = pad_to_longest_why(context.target)
                    context.note("pad_to_longest", lambda count: _pad_to_longest_note(count, why))
            else:
                extended_trace = run(layout.extended(args, generator))
                extended = dict(floating_leaves(extended_trace.output))
                paths["extended"] = extended_trace.path
        except ModelError as exc:
            if not self._too_long(layout, args, run):
                exc.hints = (*exc.hints, _extended_raised(layout))
                raise
            # The model takes no sequence of padded + EXTRA_STEPS steps at all (a position
            # table that ends at the padded length): rule 2 cannot be asked of it here.
            extended = None

        if (
            extended is None and all(lengths[row] >= padded for row in rows)
            and all(len(set(steps)) <= 1 for _, steps in layout.beside)
        ):
            # Every row fills the padded length (and the other lengths theirs) and no longer
            # batch ran: each row alone is the row itself, and no padding was put anywhere (a
            # model that takes only full windows).
            if quiet:
                raise _NotCompared
            return context.nothing_to_compare(_nothing_padded(layout), drawn=True)
        if native is not None and not (
            all_finite(v for a in alone.values() for v in a.values()) and (extended is None or all_finite(extended.values()))
        ):
            raise _Float64Unfit
        if native is None and _any_nan(v for a in alone.values() for v in a.values()):
            raise _NaN
        if native is None and extended is not None and _any_nan(extended.values()):
            # NaN made by the extra padding dyncheck appended (its random values through a
            # log, a sqrt): the model never meets them; rule 2 is not asked on this example,
            # rule 1 still is.
            extended = None
        findings: list[tuple[str, list[str]]] = []
        # leaf -> (batch axis, (time axis, offset) pairs) for the leaves compared row by row;
        # the offset of an axis at another rate is the steps each row alone has there
        compared: dict[str, tuple[int, list[tuple[int, Any]]]] = {}
        # what the leaves at another rate are, where no row ran alone to count their steps
        unaligned_leaves: list[str] = []
        # the leaves with no batch axis (a loss over the batch): the extra padding must not
        # change them either, compared whole
        whole_only: list[str] = []
        for leaf, value in whole.items():
            if _CACHE.search(leaf):
                continue  # state for the next call, not this call's result
            rows_alone = [a[leaf] for a in alone.values() if leaf in a]
            if (
                rows_alone and all(pairwise_axes(value, row, batch) for row in rows_alone)
                and (extended is None or leaf not in extended or extended[leaf].shape == value.shape)
            ):
                # every row paired with every other (CLIP's logits_per_image): coupled by design.
                # Every row alone is [1, 1] there, and the extra padding changes no axis; a
                # language model's [batch, time, vocab] whose padded length is the batch's
                # size looks so only on a row of length 1.
                continue
            batch_axis = _batch_axis(
                value, batch, [a[leaf] for a in alone.values() if leaf in a],
                None if extended is None else extended.get(leaf),
            )
            if batch_axis is None and extended is not None and leaf in extended and extended[leaf].shape == value.shape:
                whole_only.append(leaf)
                continue
            if (
                batch_axis is None
                or (extended is not None and leaf not in extended)
                or any(leaf not in a for a in alone.values())
            ):
                continue
            problem, time_axes, unaligned = self._time_axes(
                leaf, batch_axis, value, alone, None if extended is None else extended[leaf], lengths, padded,
                beside=[steps for _, steps in layout.beside],
            )
            if problem:
                findings.append((problem, []))
            elif unaligned and not alone:
                unaligned_leaves.append(unaligned)
            else:
                # An axis at another rate (a strided convolution over time): a row's valid
                # steps are the ones it has alone, where all its steps are its own.
                compared[leaf] = (batch_axis, [
                    (axis, {row: a[leaf].shape[axis] for row, a in alone.items()} if offset is None else offset)
                    for axis, offset in time_axes
                ])

        if quiet and (not findings and not compared and not whole_only or not alone and extended is None):
            raise _NotCompared
        if not alone and extended is None:
            return context.nothing_to_compare(_too_short(layout), drawn=True)
        if not findings and not compared and not whole_only:
            if unaligned_leaves:
                return context.nothing_to_compare(f"{unaligned_leaves[0]}{_UNALIGNED}")
            return context.nothing_to_compare(missing_output(whole_trace.output) or _NO_BATCH_AXIS)
        if unaligned_leaves and not quiet:
            context.note("unaligned", lambda count: f"{unaligned_leaves[0]}{_UNALIGNED} ({count} example{'s' if count != 1 else ''})")
        context.compared()
        for leaf, (batch_axis, time_axes) in compared.items():
            rtol, atol = tolerances(native or whole[leaf].dtype)
            atol *= slack
            for row in rows:
                length = lengths[row]
                in_batch = _valid(whole[leaf], batch_axis, row, time_axes, length)
                outputs = alone.get(row)
                lines = [] if outputs is None else mismatch(
                    in_batch, _valid(outputs[leaf], batch_axis, row, time_axes, length, index=0), rtol=rtol, atol=atol
                )
                if lines:
                    findings.append((
                        f"row {row} ({layout.length_words(row)}) gives a different {leaf} "
                        f"in the batch than alone (a batch of one, trimmed to length {length})",
                        [
                            f"{leaf}[{row}] in the batch against alone{_own_steps(time_axes, row)}:",
                            *(f"  {line}" for line in lines), *parted(row, f"row {row} alone"),
                        ],
                    ))
                if extended is None:
                    continue
                padded_more = _valid(extended[leaf], batch_axis, row, time_axes, length)
                lines = mismatch(padded_more, in_batch, rtol=rtol, atol=atol)
                if lines:
                    findings.append((
                        f"appending {EXTRA_STEPS} padding steps of {'the declared padding value' if layout.fill else 'other values'} changes {leaf} of row {row} "
                        f"({layout.length_words(row)})",
                        [
                            f"{leaf}[{row}] with the extra padding against without{_own_steps(time_axes, row)}:",
                            *(f"  {line}" for line in lines), *parted("extended", "the batch with the extra padding"),
                        ],
                    ))
        for leaf in whole_only:
            rtol, atol = tolerances(native or whole[leaf].dtype)
            lines = mismatch(extended[leaf], whole[leaf], rtol=rtol, atol=atol * slack)
            if lines:
                findings.append((
                    f"appending {EXTRA_STEPS} padding steps of {'the declared padding value' if layout.fill else 'other values'} "
                    f"changes {leaf}, which has no batch axis (a value over the whole batch, such as a loss): padded "
                    f"steps take part in it (lengths {list(lengths)}, padded length {padded})",
                    [
                        f"{leaf} with the extra padding against without:", *(f"  {line}" for line in lines),
                        *parted("extended", "the batch with the extra padding"),
                    ],
                ))

        if not findings:
            # A complex output is projected as its real and imaginary parts (a trailing axis of 2).
            shapes = {leaf: (*whole[leaf].shape, 2) if whole[leaf].is_complex() else whole[leaf].shape
                      for leaf in compared}
            findings += self._gradients(
                context, model, example, layout, args, generator, compared, shapes, native, slack,
                extend=extended is not None, alone=list(alone),
            )

        if not findings:
            return
        if len(findings) == 1:
            text, details = findings[0]
            headline = f"{text[0].upper()}{text[1:]}: {_why(text)}"
        else:
            headline = f"Padding or the other rows change a row's results ({len(findings)} problems):"
            details = []
            for text, lines in findings:
                details.append(f"- {text}")
                details.extend(f"    {line}" for line in lines)
        # One raise statement: Hypothesis tells failures apart by where they are raised.
        raise InvariantViolation(headline, details, path=whole_trace.path)

    @staticmethod
    def _time_axes(
        leaf: str,
        batch_axis: int,
        value: torch.Tensor,
        alone: dict[int, dict[str, torch.Tensor]],
        extended: torch.Tensor | None,
        lengths: list[int],
        padded: int,
        *,
        beside: Sequence[Sequence[int]] = (),
    ) -> tuple[str | None, list[tuple[int, int]], str | None]:
        """(a problem, [], None) when an axis of ``leaf`` neither keeps its size nor follows
        the padded length; else (None, the (axis, offset) pairs that follow it, what the
        first axis at another rate is, or None). An axis at another rate (a strided
        convolution over time) has the offset None: its steps are counted on the rows
        alone. An axis follows
        the padded length with an offset when it is that many steps longer or shorter for
        the batch, each row alone and the extra padding alike (a class token put first,
        right context consumed). Without ``extended`` (the model takes no longer sequence),
        the batch and the rows alone decide. An axis that follows other lengths ``beside``
        the padded batch's (a decoder's, drawn to their longest), each row alone at its own
        steps there, is compared at those steps."""
        shapes = [*([] if extended is None else [extended.shape]), *(a[leaf].shape for a in alone.values())]
        if any(len(s) != value.dim() for s in shapes):
            return f"{leaf} has {value.dim()} axes for the batch but not for a row alone or with extra padding", [], None
        time_axes: list[tuple[int, int | None]] = []
        unaligned = None
        for axis in range(value.dim()):
            if axis == batch_axis:
                continue
            sizes = {row: a[leaf].shape[axis] for row, a in alone.items()}
            more = value.shape[axis] if extended is None else extended.shape[axis]
            if value.shape[axis] == more and all(s == value.shape[axis] for s in sizes.values()):
                continue
            offset = value.shape[axis] - padded
            if (
                (extended is None or more == padded + EXTRA_STEPS + offset)
                and all(s == lengths[row] + offset for row, s in sizes.items())
            ):
                time_axes.append((axis, offset))
                continue
            cut_to_longest = value.shape[axis] == max(lengths) < padded and all(
                s == lengths[row] for row, s in sizes.items()
            )
            if more == value.shape[axis] and sizes and not cut_to_longest and any(
                all(s - steps[row] == value.shape[axis] - max(steps) for row, s in sizes.items() if row < len(steps))
                for steps in beside if steps and len(steps) == len(lengths)
            ):
                # one step per step of the other lengths (a forecaster's decoder steps): each
                # row alone keeps its own there, as the batch's row does up to them
                time_axes.append((axis, None))
                continue
            by_length = sorted((lengths[row], s) for row, s in sizes.items())
            if (
                more >= value.shape[axis]
                # as many frames as padded steps only at a degenerate size, where the extra
                # padding shows the rate (stride 2: 1 frame for 1 step, 2 for 3)
                and (value.shape[axis] != padded or (extended is not None and more < padded + EXTRA_STEPS))
                # not cut to the batch's longest sequence (pad_packed_sequence without total_length)
                and not (
                    value.shape[axis] == max(lengths) and more == value.shape[axis]
                    and all(s == lengths[row] for row, s in sizes.items())
                )
                and all(s == value.shape[axis] for row, s in sizes.items() if lengths[row] == padded)
                and all(a[1] <= b[1] for a, b in zip(by_length, by_length[1:]))
                and all(s <= value.shape[axis] for s in sizes.values())
            ):
                row = next((r for r, s in sizes.items() if lengths[r] < padded), next(iter(sizes), 0))
                unaligned = unaligned or (
                    f"axis {axis} of {leaf} follows the padded length at another rate ({value.shape[axis]} steps for "
                    f"{padded} padded" + (f", {more} for {padded + EXTRA_STEPS}" if extended is not None else "")
                    + (f", {sizes[row]} for row {row} alone of length {lengths[row]}" if row in sizes else "")
                    + ")"
                )
                time_axes.append((axis, None))
                continue
            if (
                more == value.shape[axis]
                and sizes
                and not all(s == lengths[row] for row, s in sizes.items())
                and _padded_past_end(value, batch_axis, axis, sizes)
            ):
                # The model's own number of steps (a greedy decoder that runs until every row
                # has ended), padded past each row's end: compared at the steps a row has alone.
                time_axes.append((axis, None))
                continue
            row = next((r for r, s in sizes.items() if s != lengths[r] + offset), next(iter(sizes), 0))
            text = (
                f"axis {axis} of {leaf} does not follow the padded length: {value.shape[axis]} for the batch "
                f"(padded length {padded}), {sizes.get(row)} for row {row} alone (length {lengths[row]})"
            )
            if extended is not None:
                text += f", {more} with {EXTRA_STEPS} more padding steps"
            return text, [], None
        return None, time_axes, unaligned

    @staticmethod
    def _too_long(layout: _Layout, args: dict[str, Any], run: Any) -> bool:
        """Whether the model raises on the extended batch's length with no padding at all:
        then the length, not the padding, is what it cannot take."""
        full = layout.full_length(layout.extended(args, torch.Generator().manual_seed(0)))
        try:
            run(full)
        except ModelError:
            return True
        return False

    def _gradients(
        self,
        context: Context,
        model: nn.Module,
        example: Example,
        layout: _Layout,
        args: dict[str, Any],
        generator: torch.Generator,
        compared: dict[str, tuple[int, list[tuple[int, Any]]]],
        shapes: dict[str, tuple[int, ...]],
        native: torch.dtype | None,
        slack: float,
        *,
        extend: bool = True,
        alone: list[int],
    ) -> list[tuple[str, list[str]]]:
        """Rule 3, on fresh calls: the batch's gradient against the rows' and (when ``extend``)
        the extended batch's.

        The loss is a fixed random projection of the valid outputs (not their sum, which a
        final LayerNorm or softmax makes constant): weights of the batch's shape drawn from
        the example's seed, of which row ``r`` alone gets the slice of row ``r`` in the batch,
        so each row's loss is the same in the batch, alone and with extra padding."""
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        floating = {leaf: axes for leaf, axes in compared.items()}
        if not named or not floating:
            return []
        lengths = layout.lengths
        weights = {leaf: projection(shapes[leaf], seed=example.seed, key=leaf) for leaf in floating}

        def gradients(arguments: dict[str, Any], rows: list[int], *, alone: bool = False) -> list[torch.Tensor] | None:
            """The gradients of the loss over ``rows``: of the batch's, or (``alone``) of
            the one row in ``arguments``, a batch of one."""
            output = context.run(model, Example(arguments, example.seed, example.dims), record=False).output
            leaves = dict(floating_leaves(output))
            parts = [
                project(
                    _valid(leaves[leaf], batch_axis, row, time_axes, lengths[row], index=0 if alone else row),
                    _valid(weights[leaf], batch_axis, row, time_axes, lengths[row]),
                )
                for leaf, (batch_axis, time_axes) in floating.items()
                if _is_float(leaves[leaf]) and leaves[leaf].requires_grad
                for row in rows
            ]
            if not parts:
                return None
            try:
                with grads_put_back(p for _, p in named):
                    torch.stack(parts).sum().backward()
                    grads = dense([p.grad for _, p in named])
            except Exception as exc:  # the model's own backward (an autograd.Function of its own)
                raise ModelError("backward", exc, hints=tuple(diagnose(model))) from exc
            return [torch.zeros_like(p) if g is None else g for (_, p), g in zip(named, grads)]

        rows = [r for r in range(len(lengths)) if lengths[r] > 0]
        batch_grads = gradients(args, rows)
        if batch_grads is None:
            return []
        if native is not None and not all_finite(batch_grads):
            raise _Float64Unfit
        if native is None and _any_nan(batch_grads):
            raise _NaN
        # Rows the model refused alone (shorter than the spec allows: see _check) leave the
        # comparison with the rows alone: the batch's loss over the others against their sum.
        runnable = [r for r in rows if r in alone]
        # A row alone whose outputs do not depend on the parameters (a decoder given one step
        # decodes none) adds a gradient of zeros: in the batch its steps must add none either.
        zeros = [torch.zeros_like(p) for _, p in named]
        per_row = [
            grads if grads is not None else zeros
            for grads in (gradients(layout.row(args, row), [row], alone=True) for row in runnable)
        ]
        comparisons = []
        if runnable:
            batch_alone = batch_grads if runnable == rows else gradients(args, runnable)
            if batch_alone is not None:
                comparisons.append(("alone", batch_alone, [sum(g[i] for g in per_row) for i in range(len(named))]))
        if extend:
            extended = gradients(layout.extended(args, generator), rows)
            if extended is None:
                return []
            comparisons.append(("extended", extended, batch_grads))
        if native is not None and not all_finite(g for grads in (*per_row, *(c[1] for c in comparisons)) for g in grads):
            raise _Float64Unfit
        if native is None:
            # as for the outputs: NaN made by the extra padding leaves rule 2 out
            comparisons = [c for c in comparisons if c[0] != "extended" or not _any_nan(c[1])]
            if _any_nan(g for grads in (*per_row, *(c[1] for c in comparisons)) for g in grads):
                raise _NaN
        findings = []
        worst = 0.0  # the largest difference found, against the largest entry compared
        for label, actual_grads, expected_grads in comparisons:
            bad, details = [], []
            for i, ((name, parameter), actual, expected) in enumerate(zip(named, actual_grads, expected_grads)):
                rtol, atol = tolerances(native or parameter.dtype)
                atol *= slack
                # The rows' gradients are summed: their round-off follows the sum of their sizes.
                scale = sum(g[i].abs() for g in per_row) if label == "alone" else expected
                tol = gradient_tolerances(scale, rtol, atol)
                lines = mismatch(actual, expected, **tol)
                if lines:
                    largest = max(float(scale.abs().max()), float(expected.abs().max()), float(actual.abs().max()))
                    worst = max(worst, float((actual - expected).abs().max()) / largest if largest else math.inf)
                    bad.append(name)
                    details.append(f"{name}.grad:")
                    details.extend(f"  {line}" for line in lines)
            if bad:
                shown = ", ".join(bad)
                if label == "alone":
                    text = (
                        f"the gradients of {shown} for the batch's loss (a random projection of the valid outputs) differ from "
                        f"the sum over rows of each row's gradients alone "
                        f"(lengths {lengths}, padded length {layout.padded})"
                    )
                else:
                    text = (
                        f"appending {EXTRA_STEPS} padding steps of {'the declared padding value' if layout.fill else 'other values'} "
                        f"changes the gradients of {shown} "
                        f"(lengths {lengths}, padded length {layout.padded})"
                    )
                findings.append((text, details))
        if findings and native is None and not layout.fill and worst <= _ROUNDING_ONLY:
            # Compared in the model's own float32 (it cannot run in float64): gradients summed
            # through a recurrence, at inputs in the hundreds, differ by float32 rounding
            # between a batch and its rows alone, or a longer padded batch (other matrix
            # shapes, other kernels). Where two paddings of other values give the batch
            # bitwise the same gradients, the padding's values reach nothing, and a
            # difference this small is that rounding, not a finding.
            first, second = (layout.extended(args, torch.Generator().manual_seed(example.seed + k)) for k in (1, 2))
            if any(
                isinstance(a, torch.Tensor) and not torch.equal(a, b)
                for a, b in zip(tree_leaves(first), tree_leaves(second))
            ):
                one, other = gradients(first, rows), gradients(second, rows)
                if one is not None and other is not None and all(torch.equal(a, b) for a, b in zip(one, other)):
                    context.note("float32_rounding", lambda count: (
                        f"gradients compared in float32 (the model does not run in float64) differed by rounding "
                        f"only on {count} example{'s' if count != 1 else ''}: at most {_ROUNDING_ONLY:g} of their "
                        "largest entry, and two paddings of other values gave the batch bitwise the same gradients"
                    ))
                    return []
        return findings


#: The largest difference (against the largest entry compared) that float32 rounding may
#: explain, where the padding's values are shown to reach nothing.
_ROUNDING_ONLY = 1e-3


def _fractions(layout: _Layout, example: Example) -> str | None:
    """Why floating lengths that look like fractions (one is not whole, or none is above 1),
    not drawn as relative lengths, say nothing: read as steps, 0.6 would be none and 1.0
    one, where to SpeechBrain 1.0 is every step. None for any other lengths."""
    if layout.mask or layout.relative:
        return None
    raw = slot_value(example.args, layout.lengths_slot)
    if not isinstance(raw, torch.Tensor) or not raw.is_floating_point() or not raw.numel():
        return None
    if bool((raw == raw.round()).all()) and bool((raw > 1).any()):
        return None  # whole numbers of steps, held as floats
    return (
        f"{layout.lengths_name} holds {_values(raw)}, floats that read as fractions, not steps: if they are fractions "
        f"of the padded length (SpeechBrain's wav_lens), draw them with sequence_lengths(relative=True); steps as an "
        f"integer tensor"
    )


def _values(value: torch.Tensor) -> str:
    """A few of a tensor's values, as a list: ``[0.6, 1]``."""
    shown = [f"{float(v):.4g}" for v in value.reshape(-1)[:4]]
    return "[" + ", ".join(shown) + (", ..." if value.numel() > 4 else "") + "]"


def _too_short(layout: _Layout) -> str:
    return (
        f"every sequence is shorter than the shortest padded length the spec allows ({layout.shortest}), "
        f"so no row runs alone, and the model takes no longer batch for the extra padding"
    )


def _nothing_padded(layout: _Layout) -> str:
    if layout.pad_to_longest:
        return (
            f"every sequence of {layout.lengths_name} is as long as the longest (a batch of one, or rows of one "
            "length), so no row has padding, and with the lengths drawn to their longest (pad_to_longest=True) "
            "none is appended either: nothing padded was compared"
        )
    return (
        f"no sequence of {layout.lengths_name} is shorter than the padded length, so no row has padding, and the "
        "model takes no longer batch for the extra padding: nothing padded was compared (a model that takes only "
        "full-length sequences: skip padding_invariance)"
    )


def _no_rows(name: str) -> str:
    """Why nothing was compared when no sequence has a step, and how to draw one: for
    lengths inside a dict or tuple of inputs (``batch['lengths']``, ``batch[1]``), in the
    strategy of the argument that holds them (a Spec's inputs are named by argument)."""
    root = re.match(r"\w+", name)
    fix = (
        f"Spec(inputs={{\"{name}\": sequence_lengths(min_length=1)}})"
        if root is None or root.group() == name
        else f"sequence_lengths(min_length=1) as the strategy of {name} inside Spec(inputs={{\"{root.group()}\": ...}})"
    )
    return (
        f"no sequence of length 1 or more ({name} empty or all 0): no row to run alone; draw at least "
        f"one step, e.g. {fix}"
    )


#: After what an output at another rate is, when no row ran alone to count its steps (see
#: PaddingInvariance._time_axes).
_UNALIGNED = (
    ": no row ran alone to say how many of its steps are a row's own (a strided convolution or pooling "
    "over time), so it is not compared row by row"
)

_NO_BATCH_AXIS = (
    "no output has an axis of the batch's size where a row alone has size 1: nothing to compare row by row"
)


def padding_past(value: torch.Tensor, axis: int, own: int) -> torch.Tensor | None:
    """The values ``value``'s steps past its first ``own`` on ``axis`` hold, when there are
    such steps and every one is the same as the first (padding after a row's end: a PAD
    token, zero or masked scores); None otherwise. Shared with batch_invariance."""
    if value.shape[axis] <= own:
        return None
    tail = value.narrow(axis, own, value.shape[axis] - own)
    if not bool((tail == tail.narrow(axis, 0, 1)).all()):
        return None
    return tail.narrow(axis, 0, 1).unique()


def _padded_past_end(value: torch.Tensor, batch_axis: int, axis: int, sizes: dict[int, int]) -> bool:
    """Whether each row has at least the steps it has alone on ``axis`` of the batch's
    ``value``, and every step past those is padding (:func:`padding_past`)."""
    return all(
        own == value.shape[axis]
        or padding_past(value.narrow(batch_axis, row, 1), axis, own) is not None
        for row, own in sizes.items()
    )


def gradient_tolerances(expected: torch.Tensor, rtol: float, atol: float) -> dict[str, float]:
    """Tolerances for a gradient: a gradient sums over steps and sequences, so its rounding
    error follows its largest entries, not each entry: atol grows by rtol times the
    largest |entry| of ``expected`` (or of the sizes its terms had)."""
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    return {"rtol": rtol, "atol": atol + rtol * scale}


def _why(text: str) -> str:
    """The likely causes, after a single finding."""
    if text.startswith("axis"):
        return (
            "a per-step output must have one step per padded step (give pad_packed_sequence "
            "total_length=<the padded length>, or step over every padded step, not up to lengths.max()), a "
            "per-sequence output none."
        )
    if text.startswith("appending"):
        return (
            "the model reads past each sequence's length (an RNN run over the padding, padding averaged in, "
            "the last position pooled whatever the mask)."
        )
    return (
        "a row's result depends on its padding or on the other rows (the last padded step taken for "
        "the last valid one, padding averaged in, rows sorted and never put back, state kept from "
        "an earlier call)."
    )
