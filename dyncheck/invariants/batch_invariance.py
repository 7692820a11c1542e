"""batch_invariance: in eval mode, a sample's output does not depend on the rest of its batch.

Each sample's output in a batch equals the output of that sample alone, and permuting the
batch permutes the outputs — with the same seed, so a stochastic model draws the same
numbers. Catches branching on batch statistics (``if x.mean() > 0``), per-sample randomness
tied to batch position (``torch.rand(batch_size)``), capacity-limited routing that drops
samples. A model coupled across the batch by design says so with
``Spec(skip={"batch_invariance": "..."})``.

The batch axis of an argument is the one its strategy names ``"batch"``
(``tensors(shape=("time", "batch", 8))``), else its first axis (of the first two) whose size
is the example's ``"batch"`` size; a list drawn by ``sequence_lists`` is itself the batch,
one sequence a sample, and so is a ``PackedSequence`` (cut sequence by sequence, packed
again); a dict of inputs is cut entry by entry; arguments that have none,
like a control value, are shared. The batch axis of an output is the one of the batch's
size where the output of a sample alone has size 1 and every other axis agrees (a
time-major output whose time equals the batch size is read right), else likewise its first
axis of the batch's size. Where the batch comes as packs or lists of sequences, an output
padded back (``pad_packed_sequence``) is compared at each sample's own steps (the lengths of
whichever input pack the axis follows), and an output in a pack's order (``out.data``) by
each sample's rows in it.

When no strategy draws a ``"batch"`` size (plain Hypothesis strategies), the batch is read
from the values: the leading axis, when every tensor argument has the same leading size of
2 or more and no layer of the model is time-major (an ``nn.GRU`` or
``nn.MultiheadAttention`` left at ``batch_first=False``, whose leading axis may be time).
An example with no batch of 2 or more compares nothing, and a run where none did is a skip
that says how to name the batch axis.

Lengths drawn with ``sequence_lengths(descending=True)`` (a model that packs them with
``enforce_sorted=True``) are permuted only among rows of equal length; an example whose
lengths all differ is not permuted, and the summary counts it.

Lengths drawn with ``sequence_lengths(pad_to_longest=True)`` (a model that takes no batch
padded past its longest sequence) leave the rows shorter than the padded length out of the
comparison alone: alone, such a row would be padded past its length. They stay in the
batch and its permutation, the summary counts the examples, and padding_invariance runs
each of them alone, trimmed to its length.

Float32 results of one sample computed in a batch and alone may differ by rounding alone:
the matrix products take the rows in another grouping. A difference past the float32
tolerance is therefore given, in turn, what a one-ulp move of the row's inputs changes, then
ten times how far a fresh float32 copy's output on the row lies from a fresh float64 copy's
(a sum of inputs in the hundreds that cancels); only what remains is reported.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from dyncheck.agreement import ROUNDING_FACTOR, close
from dyncheck.casting import widened
from dyncheck.rounding import SENSITIVITY_FACTOR, largest_difference, nudged
from dyncheck.errors import InvariantViolation, ModelError, one_line
from dyncheck.examples import (
    Example, strategy_arguments, strategy_elements, strategy_entries, strategy_kind, strategy_members,
)
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants._where import first_coupled_module, reported
from dyncheck.target import Target
from dyncheck.ties import ConsistentTies
from dyncheck.tracing import floating_leaves, inputs_tuple, leaves, missing_output, tuple_like, unpacked

__all__ = ["BatchInvariance"]


#: How many units in the last place two scores may differ by to count as a tie a batch's
#: rounding decided (a power of two; of the scores' own dtype).
_TIE_ULPS = 8


def _tie_note(context: Context, difference: str, selections: str) -> None:
    """Say in the summary that a difference a tie decided by rounding explains was not
    counted (the check goes on with the other outputs, rows and the permuted batch)."""
    why = (
        f"{difference} only where {selections} picked among scores equal up to rounding (a matrix product rounds "
        f"a row in a batch otherwise than alone); with scores within {_TIE_ULPS} ulps of each other picked alike, "
        "they agree"
    )
    context.note("rounded_tie", lambda count: f"a tie not counted on {count} example{'s' if count != 1 else ''}: {why}")
    # an example that compared nothing else compared nothing, and says why
    context.nothing_to_compare(why)


def _batch_axis(value: Any, size: int) -> int | None:
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return None
    for axis in range(min(value.dim(), 2)):
        if value.shape[axis] == size:
            return axis
    return None


def _named_batch_axis(strategy: Any, value: Any, size: int) -> int | dict[str, int | None] | None:
    """The axis a strategy's named shape calls "batch", else the first of the batch's size
    (none where the named shape has no "batch": a time grid the batch shares); 0 for a list
    of sequences (:func:`~dyncheck.strategies.sequence_lists`): the list is the batch."""
    if strategy_kind(strategy) == "sequence_lists" and isinstance(value, list) and len(value) == size:
        return 0
    if isinstance(value, nn.utils.rnn.PackedSequence):  # a pack is a batch of sequences
        return 0 if value.batch_sizes.numel() and int(value.batch_sizes[0]) == size else None
    if isinstance(value, dict):  # a dict of inputs: each entry's own axis (a dict or tuple in it, its members')
        entries = strategy_entries(strategy)
        axes = {key: _named_batch_axis(entries.get(key), item, size) for key, item in value.items()}
        return axes if any(axis is not None for axis in axes.values()) else None
    if inputs_tuple(value):
        # a tuple of inputs (an LSTM's (h_0, c_0), or a NamedTuple of them, sb3-contrib's
        # RNNStates(pi=(h, c), vf=(h, c))): each member's own axis
        members = strategy_members(strategy) or (None,) * len(value)
        axes = [_named_batch_axis(member, item, size) for member, item in zip(members, value)]
        return axes if any(axis is not None for axis in axes) else None
    if type(value) is list and value:
        # A list of batches (two views of each sample, multi-crop images): each element's
        # own "batch" axis, where the elements' strategy names one; the list itself is no
        # batch, and no axis is guessed from a size for it (a list of sequences of its
        # own lengths, drawn another way, would be cut along time).
        axes = [_named_axis(strategy_elements(strategy), item) for item in value]
        return axes if all(axis is not None for axis in axes) else None
    named = _named_axis(strategy, value)
    if named is None and _shared(strategy, value):
        return None
    return named if named is not None else _batch_axis(value, size)


def _shared(strategy: Any, value: Any) -> bool:
    """Whether ``strategy`` draws ``value`` with a shape that names no batch axis
    (``tensors(shape=("steps",))``: a neural ODE's time grid, shared by the batch), so that
    no axis of it is the batch's, whatever its size."""
    shape = strategy_arguments(strategy).get("shape")
    return isinstance(value, torch.Tensor) and isinstance(shape, (tuple, list)) and len(shape) == value.dim() and (
        "batch" not in shape
    )


def _named_axis(strategy: Any, value: Any) -> int | None:
    """The axis ``strategy``'s named shape calls "batch" in ``value``; None where it names none."""
    shape = strategy_arguments(strategy).get("shape")
    if isinstance(value, torch.Tensor) and isinstance(shape, (tuple, list)) and len(shape) == value.dim():
        if "batch" in shape:
            return list(shape).index("batch")
    return None


def pairwise_axes(whole: torch.Tensor, alone: torch.Tensor | None, size: int) -> tuple[int, int] | None:
    """The two axes of an output that pairs every sample with every other (CLIP's
    ``logits_per_image``, ``[images, texts]``): both of the batch's size where a sample
    alone has 1, every other axis the same; None for any other output."""
    if alone is None or alone.dim() != whole.dim() or size < 2:
        return None
    axes = [a for a in range(whole.dim()) if whole.shape[a] == size and alone.shape[a] == 1]
    rest = [a for a in range(whole.dim()) if a not in axes]
    if len(axes) == 2 and all(whole.shape[a] == alone.shape[a] for a in rest):
        return axes[0], axes[1]
    return None


@dataclasses.dataclass(frozen=True)
class _PackRows:
    """An output whose first axis is in an input pack's order (the rows of ``out.data``, a
    layer run on them): each sample's rows, in step order, and the argument (its slot) the
    pack is."""

    rows: tuple[torch.Tensor, ...]
    slot: tuple[Any, ...]

    @classmethod
    def of(cls, pack: nn.utils.rnn.PackedSequence, slot: tuple[Any, ...]) -> _PackRows:
        positions = torch.arange(pack.data.shape[0])
        placed = nn.utils.rnn.PackedSequence(positions, pack.batch_sizes, pack.sorted_indices, pack.unsorted_indices)
        return cls(tuple(nn.utils.rnn.unpack_sequence(placed)), slot)

    def in_batch_order(self) -> bool:
        """Whether the rows are the samples in order, one each (every length 1, packed stably)."""
        return all(len(r) == 1 and int(r[0]) == i for i, r in enumerate(self.rows))


@dataclasses.dataclass(frozen=True)
class _Views:
    """An output whose first axis holds a batch for each view of the samples an input list
    gives (a batch per element), one after another: DINO's multi-crop wrapper returns
    ``torch.cat`` of each view's outputs, ``[views * batch, ...]``, where a sample alone gives
    ``[views, ...]``. With ``sample_major``, each sample's views together instead
    (``torch.stack(z, 1).flatten(0, 1)``)."""

    count: int
    sample_major: bool = False

    def select(self, tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        rest = tensor.shape[1:]
        if self.sample_major:
            picked = tensor.reshape(-1, self.count, *rest).index_select(0, index)
        else:
            picked = tensor.reshape(self.count, -1, *rest).index_select(1, index)
        return picked.reshape(-1, *rest)


def _view_count(args: dict[str, Any], axes: dict[str, Any]) -> int | None:
    """How many views of the samples the inputs hold: the length of the one list cut
    element by element (a batch per element), where every such list has it; None where
    none has, or they differ."""
    counts = {
        len(args[name]) for name, axis in axes.items()
        if isinstance(axis, list) and type(args.get(name)) is list and all(isinstance(a, int) for a in axis)
    }
    return counts.pop() if len(counts) == 1 else None


def _select(
    tensor: torch.Tensor, axis: int | tuple[int, int] | _PackRows | _Views, index: torch.Tensor
) -> torch.Tensor:
    """The samples ``index`` of an output along its batch axis, or both axes of a pairwise
    one, or the rows of each in a pack's order (in the order of ``index``), or each view's
    rows of them."""
    if isinstance(axis, _Views):
        return axis.select(tensor, index)
    if isinstance(axis, _PackRows):
        return tensor.index_select(0, torch.cat([axis.rows[i] for i in index.tolist()]).to(tensor.device))
    if isinstance(axis, tuple):
        return tensor.index_select(axis[0], index).index_select(axis[1], index)
    return tensor.index_select(axis, index)


def _per_sample_lists(whole: Any, alone: Any, size: int, prefix: str = "output") -> list[str]:
    """The names (as :func:`~dyncheck.tracing.leaves` gives them) of the lists in an output
    that hold one entry per sample: ``size`` entries for the batch where a sample alone
    has one (a detection head's boxes per image, ``[b[i] for i in range(batch)]``). Walked in
    step through lists, tuples, mappings and dataclasses."""
    if isinstance(whole, (list, tuple)) and isinstance(alone, (list, tuple)):
        if size >= 2 and len(whole) == size and len(alone) == 1 and type(whole) is type(alone):
            return [prefix]
        if len(whole) != len(alone):
            return []
        return [
            found for i, (a, b) in enumerate(zip(whole, alone))
            for found in _per_sample_lists(a, b, size, f"{prefix}[{i}]")
        ]
    if isinstance(whole, Mapping) and isinstance(alone, Mapping):
        fields = dataclasses.is_dataclass(whole) and not isinstance(whole, type)
        return [
            found for key, item in whole.items() if key in alone
            for found in _per_sample_lists(
                item, alone[key], size,
                f"{prefix}.{key}" if fields and isinstance(key, str) and key.isidentifier() else f"{prefix}[{key!r}]",
            )
        ]
    if dataclasses.is_dataclass(whole) and not isinstance(whole, type) and type(whole) is type(alone):
        return [
            found for f in dataclasses.fields(whole)
            for found in _per_sample_lists(getattr(whole, f.name), getattr(alone, f.name), size, f"{prefix}.{f.name}")
        ]
    return []


def _sample_entry(name: str, lists: list[str]) -> tuple[int, Callable[[int], str]] | None:
    """For an output leaf inside a per-sample list (see :func:`_per_sample_lists`): the
    sample it belongs to, and its name at another entry of that list (entry 0: in a run of
    that sample alone)."""
    for prefix in lists:
        match = re.match(rf"{re.escape(prefix)}\[(\d+)\]", name)
        if match:
            rest = name[match.end():]
            return int(match.group(1)), lambda entry: f"{prefix}[{entry}]{rest}"
    return None


def _dropped_batch_axis(alone: dict[str, torch.Tensor], whole: dict[str, torch.Tensor], located: Any) -> str | None:
    """Why a sample alone differs from its row, when it is the shape: alone, its output has
    no batch axis where its row in the batch has one of size 1 (``squeeze()`` without a
    dim on a batch of one, ``x[0]``). None otherwise."""
    if located is None or not located[1] or not isinstance(located[4], int):
        return None
    rows, _, _, name, axis = located
    mine = alone.get(name)
    if mine is None or name not in whole:
        return None
    theirs = _select(whole[name], axis, rows)
    kept = tuple(size for i, size in enumerate(theirs.shape) if i != axis)
    if mine.dim() != theirs.dim() - 1 or tuple(mine.shape) != kept:
        return None
    if close(mine.unsqueeze(axis), theirs):
        return None  # its values differ too, the axis put back: not the shape alone
    return (
        f"through its size: alone, the sample's {name} has no batch axis ({list(mine.shape)} where its row in the batch "
        f"is {list(theirs.shape)}): forward drops the batch axis of a batch of one (squeeze() without a dim, x[0]); "
        "squeeze the axis you mean, squeeze(-1)"
    )


def _output_batch_axis(
    whole: torch.Tensor, alone: torch.Tensor | None, size: int, steps: set[tuple[int, int]] | None = None,
    views: int | None = None,
) -> int | tuple[int, int] | _Views | None:
    """The batch axis of an output: where the batch has ``size`` and a sample alone 1; both
    axes of a pairwise output (see :func:`pairwise_axes`), whose sample alone is its
    diagonal entry. ``steps``: a (longest sequence's length, the sample's) pair for each input
    pack or list of sequences, whose padded outputs (``pad_packed_sequence``) have as many
    steps as the longest in the batch and as the sample's own length alone; None where that
    leaves two axes possible (``[2, 2, ...]`` for a batch of 2 whose longest is 2).
    ``views``: how many views of the samples the inputs hold (see :class:`_Views`)."""
    if (
        views is not None and views > 1 and alone is not None and alone.dim() == whole.dim() >= 1
        and whole.shape[0] == views * size and alone.shape[0] == views and whole.shape[1:] == alone.shape[1:]
    ):
        return _Views(views)
    steps = {pair for pair in steps or () if pair[0] != pair[1]}
    if steps and alone is not None and alone.dim() == whole.dim():
        # An axis of the batch's size where the sample alone has 1, beside one of the steps.
        padded = [
            axis for axis in range(whole.dim())
            if whole.shape[axis] == size and alone.shape[axis] == 1
            and any((whole.shape[a], alone.shape[a]) in steps for a in range(whole.dim()) if a != axis)
            and all(
                whole.shape[a] == alone.shape[a] or (whole.shape[a], alone.shape[a]) in steps
                for a in range(whole.dim()) if a != axis
            )
        ]
        if padded:
            return padded[0] if len(padded) == 1 else None
    pair = pairwise_axes(whole, alone, size)
    if pair is not None:
        return pair
    if alone is not None and alone.dim() == whole.dim():
        candidates = [
            axis for axis in range(whole.dim())
            if whole.shape[axis] == size and alone.shape[axis] == 1
            and all(whole.shape[a] == alone.shape[a] for a in range(whole.dim()) if a != axis)
        ]
        if len(candidates) == 1:
            return candidates[0]
        # A batch axis is one a sample alone has of size 1: an axis of the batch's size by
        # chance (a tagger's 3 tags, [batch * time, 3] for a batch of 3) is not one.
        axis = _batch_axis(whole, size)
        return axis if axis is not None and alone.shape[axis] == 1 else None
    return _batch_axis(whole, size)


def _reduced_over_batch(whole: dict[str, torch.Tensor], alone: dict[str, torch.Tensor], size: int) -> str:
    """A note for the skip when an output of one or more axes has the same shape for the
    batch as for a sample alone and other values: forward reduced over the batch axis (a
    pooling over points written ``x.max(0)`` for ``x.max(2)``), or the output is meant to
    describe the whole batch. Empty otherwise."""
    for name, tensor in whole.items():
        mine = alone.get(name)
        if (
            mine is not None and tensor.dim() >= 1 and tensor.shape == mine.shape and tensor.is_floating_point()
            and close(mine, tensor)
        ):
            return (
                f"; {name} has the same shape for the batch of {size} as for a sample alone "
                f"({list(tensor.shape)}) and other values: forward reduces over the batch axis (x.max(0), "
                "x.mean(0)); if each sample should have its own output, reduce over another axis"
            )
    return ""


def _flattened(whole: dict[str, torch.Tensor], alone: dict[str, torch.Tensor], size: int) -> str | None:
    """An output that holds the batch flattened with another axis into its first (``[batch
    * time, tags]`` where a sample alone gives ``[time, tags]``), worded for the skip: which
    of its entries are a sample's (sample-major, time-major, packed) is not known."""
    for name, tensor in whole.items():
        mine = alone.get(name)
        if mine is not None and mine.dim() == tensor.dim() >= 1 and mine.shape[0] > 1 and (
            tensor.shape[0] == size * mine.shape[0] and tensor.shape[1:] == mine.shape[1:]
        ):
            return (
                f"{name} holds the batch flattened into its first axis ([batch * time, ...], a sample alone "
                "[time, ...]: view(-1, ...)), and which of its entries are a sample's (sample-major, time-major, "
                "packed order) is not known; return it with its batch axis ([batch, time, ...]) to have it compared"
            )
    return None


def _time_major(context: Context, model: nn.Module) -> list[str]:
    """The model's layers that take time first by default and were left so (an ``nn.GRU``
    or ``nn.MultiheadAttention`` with ``batch_first=False``): with them in the model, an
    input's leading axis may be time, not the batch."""
    if "time_major" not in context.memo:
        context.memo["time_major"] = [
            f"{name or type(model).__name__} ({type(module).__name__}, batch_first=False)"
            for name, module in model.named_modules()
            if isinstance(module, (nn.RNNBase, nn.MultiheadAttention)) and not getattr(module, "batch_first", True)
        ]
    return context.memo["time_major"]


def _leading_size(args: dict[str, Any], time_major: list[str], hint: str) -> tuple[int | None, str]:
    """(the batch size read from the values, or None and why not): the leading size that
    every tensor argument shares, when it is 2 or more and no layer of the model is time-major."""
    tensors = [v for v in args.values() if isinstance(v, torch.Tensor) and v.dim() >= 1]
    if not tensors:
        listed = next((
            (name, value[0]) for name, value in args.items()
            if type(value) in (list, tuple) and value and all(isinstance(v, torch.Tensor) for v in value)
        ), None)
        if listed is None:
            return None, _NO_TENSOR
        name, first = listed
        rest = [str(size) for size in first.shape[1:]]
        shape, features = _tuple_text(['"batch"', *rest]), _tuple_text(rest)
        return None, (
            f"no batch axis: {name} holds tensors, and no strategy says which axis of theirs is the batch; for a "
            f'batch in each (views of the samples) name it, e.g. Spec(inputs={{"{name}": lists(tensors(shape=({shape})), '
            f"min_size=2)}}); for a sample in each, draw sequence_lists(feature_shape=({features}))"
        )
    if time_major:
        return None, (
            f"no batch axis: no strategy names a \"batch\" axis, and {time_major[0]} takes time first, "
            f"so the inputs' leading axis may be time; {hint}"
        )
    sizes = {t.shape[0] for t in tensors}
    if len(sizes) != 1 or min(sizes) < 2:
        return None, f"{_NO_LEADING}; {hint}"
    return sizes.pop(), ""


def _tuple_text(items: list[str]) -> str:
    """The inside of a Python tuple of ``items`` as source text: ``"batch", 6`` and ``6,``."""
    return ", ".join(items) + ("," if len(items) == 1 else "")


def _hint(context: Context, args: dict[str, Any], *, time_major: bool = False) -> str:
    """``name the batch axis, e.g. Spec(inputs={"x": tensors(shape=("batch", 8))})`` for the
    first tensor argument, as the first example that needed it has it (the same words for
    every example of a run)."""
    if "hint" not in context.memo:
        name, value = next(
            ((n, v) for n, v in args.items() if isinstance(v, torch.Tensor) and v.dim() >= 1), ("x", None)
        )
        rest = [str(s) for s in value.shape[1:]] if value is not None else ["8"]
        axes = ['"time"', '"batch"', *rest[1:]] if time_major and rest else ['"batch"', *rest]
        shape = _tuple_text(axes)
        context.memo["hint"] = f'name the batch axis, e.g. Spec(inputs={{"{name}": tensors(shape=({shape}))}})'
    return context.memo["hint"]


def _refused(exc: ModelError, hint: str) -> str:
    return (
        f"forward raised {type(exc.original).__name__} on one slice of the tensor inputs' shared leading "
        f"axis, so that axis is not the batch; {hint}"
    )


_ONE_SAMPLE = "a batch of 1, with no other sample to depend on"


def _batch_bounds(target: Target) -> Any:
    """The spec's ``"batch"`` size: an int, a ``(min, max)`` pair or a strategy."""
    from dyncheck.strategies import DEFAULT_DIMS

    return dict(target.spec.dims).get("batch", DEFAULT_DIMS["batch"])


def _smallest_batch(target: Target) -> int | None:
    """The one batch size the user's spec fixes (``dims={"batch": 4}``: a cache set up for
    four), else None: a range the spec or inference gives (a BatchNorm's batch of 2 or more)
    leaves a sample alone raising the coupling it shows."""
    if "batch" in target.inferred_dims or "batch" not in dict(target.spec.dims):
        return None
    bounds = _batch_bounds(target)
    if isinstance(bounds, int):
        return bounds
    if isinstance(bounds, tuple) and len(bounds) == 2 and bounds[0] == bounds[1] and isinstance(bounds[0], int):
        return bounds[0]
    elements = getattr(bounds, "elements", None)
    return elements[0] if elements and len(set(elements)) == 1 and isinstance(elements[0], int) else None


def _one_sample(context: Context) -> str:
    """Why a batch of 1 compares nothing, with the Spec that lets it grow when the range
    allows no other size (the hint is noise beside a range that already reaches 4)."""
    bounds = _batch_bounds(context.target)
    if isinstance(bounds, int) or (isinstance(bounds, tuple) and bounds[1] < 2):
        return _ONE_SAMPLE + '; let the batch grow, e.g. Spec(dims={"batch": (1, 4)})'
    return _ONE_SAMPLE


_NO_LEADING = (
    'no batch of 2 or more: no strategy names a "batch" axis, and the tensor inputs share no leading size '
    "of 2 or more"
)
_NO_TENSOR = "forward takes no tensor argument: no batch to split"
#: What resolution's note says of token ids it found the model takes unbatched (target._probe_vectors).
_UNBATCHED = "one sequence, not a batch of them"
_DRAWS = (
    "The model draws random numbers in eval mode (another seed changes the batch's output), and a "
    "sample's numbers depend on its place in the batch (torch.randn_like(h) over the batch gives each "
    "row the numbers at its offset in the stream). If sampling at inference is by design (a VAE's z, "
    "Monte Carlo dropout), declare Spec(skip={'batch_invariance': ...}); else draw only in training "
    "(if self.training: ...)."
)
_BY_DESIGN = (
    "If the batch is meant to couple its samples (experts' capacity shared by the batch, samples that "
    "attend to each other, an exit taken when every sample is confident), say so with "
    "Spec(skip={'batch_invariance': '<why>'}); if within a tolerance (an adaptive ODE solver's one step size "
    "for the batch), give it with Spec(tolerances={'batch_invariance': {'rtol': ..., 'atol': ...}}); else "
    "compute each sample from its own row only."
)
_NO_OUTPUT_AXIS = (
    "no output has an axis of the batch's size (where a sample alone has size 1): nothing to compare "
    "sample by sample"
)


def _shorter_than_padded(context: Context, args: dict[str, Any], size: int) -> set[int]:
    """The rows a model whose lengths are drawn with ``pad_to_longest=True`` cannot take
    alone: those shorter than the padded length (alone, such a row is a batch padded past
    its longest sequence). padding_invariance runs each of them alone, trimmed to its
    length; here they stay in the batch and its permutation."""
    from dyncheck.invariants.padding_invariance import longest_padded, slot_value

    shorter: set[int] = set()
    for slot in longest_padded(context.target):
        lengths = slot_value(args, slot)
        if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.numel() != size or not size:
            continue
        longest = int(lengths.max())
        shorter |= {row for row in range(size) if int(lengths[row]) < longest}
    return shorter


def _sorted_order(context: Context, args: dict[str, Any], size: int, seed: int) -> torch.Tensor | None:
    """The permutation to run, for a model whose lengths are drawn with
    ``descending=True`` (it takes batches only longest first, as ``pack_padded_sequence``
    with ``enforce_sorted=True`` does): one drawn from the seed among the rows of equal
    length, so the lengths stay longest first; None when every length differs (no other
    order keeps them sorted). For any other model, a permutation drawn from the seed (a
    reversal when it draws the identity)."""
    from dyncheck.invariants.padding_invariance import lengths_drawn_with, slot_value

    generator = torch.Generator().manual_seed(seed)
    slot = lengths_drawn_with(context.target, "descending")
    lengths = slot_value(args, slot) if slot is not None else None
    sorted_pack = next((pack for _, pack in _packs(args) if pack.sorted_indices is None), None)
    if lengths is None and sorted_pack is not None:
        # a pack made with enforce_sorted=True (allennlp's AugmentedLstm takes only such):
        # its sequences stay longest first, as lengths drawn with descending=True do
        lengths = torch.tensor([len(sequence) for sequence in nn.utils.rnn.unpack_sequence(sorted_pack)])
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.numel() != size:
        order = torch.randperm(size, generator=generator)
        return torch.arange(size - 1, -1, -1) if torch.equal(order, torch.arange(size)) else order
    order = torch.arange(size)
    for value in lengths.unique():
        rows = (lengths == value).nonzero().flatten()
        if len(rows) > 1:
            shuffled = rows[torch.randperm(len(rows), generator=generator)]
            order[rows] = shuffled if not torch.equal(shuffled, rows) else rows.flip(0)
    return None if torch.equal(order, torch.arange(size)) else order


def _own_steps_note(count: int) -> str:
    return (
        f"on {count} example{'s' if count != 1 else ''} a sample's padded output was compared at its own steps only: "
        "in the batch it has as many as the longest sequence (pad_packed_sequence pads to it), alone as many as "
        "its own length"
    )


def _pairwise_note(name: str, count: int) -> str:
    return (
        f"{name} pairs every sample with every other ([batch, batch], as in-batch negatives' logits): only its "
        f"diagonal, each sample with itself, was compared with the sample alone (the pairs between samples are "
        f"coupled by design; {count} example{'s' if count != 1 else ''})"
    )


def _descending_note(count: int) -> str:
    return (
        f"on {count} example{'s' if count != 1 else ''} the batch was not permuted: its lengths all differ, and "
        "they are drawn longest first (descending=True), the only order the model takes"
    )


def _pad_to_longest_note(count: int, why: str) -> str:
    return (
        f"on {count} example{'s' if count != 1 else ''} the samples shorter than the padded length were not run "
        f"alone: the lengths are drawn with pad_to_longest=True, {why}; padding_invariance runs each one alone, "
        "trimmed to its length"
    )


def _take(value: Any, axis: Any, index: torch.Tensor) -> Any:
    if axis is None:
        return value
    if isinstance(axis, dict):  # a dict of inputs, entry by entry
        return {key: _take(item, axis.get(key), index) for key, item in value.items()}
    if isinstance(axis, list):  # a tuple or list of inputs, member by member
        taken = [_take(item, member, index) for item, member in zip(value, axis)]
        return taken if type(value) is list else tuple_like(value, taken)
    if isinstance(value, list):  # a list of sequences: its members are the samples
        return [value[i].clone() for i in index.tolist()]
    if isinstance(value, nn.utils.rnn.PackedSequence):  # a pack: its sequences, packed again
        sequences = nn.utils.rnn.unpack_sequence(value)
        taken = [sequences[i].clone() for i in index.tolist()]
        # packed as it was: sorted (enforce_sorted=True, no sorted_indices) where it was and
        # the rows taken stay longest first (a row alone; rows of one length permuted)
        kept = value.sorted_indices is None and all(len(a) >= len(b) for a, b in zip(taken, taken[1:]))
        return nn.utils.rnn.pack_sequence(taken, enforce_sorted=kept)
    return value.index_select(axis, index)


#: How a finding's details say the batch and the sample alone took different paths
#: (:func:`~dyncheck.invariants._where.first_coupled_module`'s words).
_APART = "take different paths"


def _paths_apart(
    context: Context, args: dict[str, Any], axes: dict[str, Any], located: tuple[Any, ...], seed: int,
    batch_path: tuple[str, ...],
) -> list[str]:
    """A line saying that the sample alone took another path than the batch, where it did:
    a branch or a loop count the model decides on the whole batch (an adaptive ODE solver's
    step count, from an error norm over every sample; an early exit once every sample is
    confident), which the general causes do not name. Empty where the paths agree or the
    sample alone cannot be run again."""
    rows, _, words = located[:3]
    try:
        alone = context.run(context.fresh_model().eval(), Example(_rows(args, axes, rows), seed, {}), record=False, grad=False)
    except ModelError:
        return []
    if tuple(alone.path) == tuple(batch_path):
        return []
    return [
        f"paths: the batch took {context.describe_path(batch_path)}; {words} alone took "
        f"{context.describe_path(alone.path)}: a branch or a loop count decided on the whole batch (an adaptive "
        "solver's step count, an early exit once every sample is confident)"
    ]


def _list_lengths(args: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[list[int]]:
    """The lengths of the sequences of each list drawn by ``sequence_lists`` among the
    arguments (in a dict of inputs too): a sample's padded outputs have its own length alone
    and the longest in the batch, as a pack's do (whose lengths its :class:`_PackRows` give)."""
    found = []
    for name, value in args.items():
        if strategy_kind(inputs.get(name)) == "sequence_lists" and isinstance(value, list):
            found.append([len(s) for s in value])
        elif type(value) is dict:
            found += _list_lengths(value, strategy_entries(inputs.get(name)))
    return found


def _packs(args: Mapping[str, Any], slot: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Each ``PackedSequence`` among the arguments (in a dict of inputs too), with its slot:
    the argument's name, then the keys down to it."""
    for name, value in args.items():
        if isinstance(value, nn.utils.rnn.PackedSequence):
            yield (*slot, name), value
        elif type(value) is dict:
            yield from _packs(value, (*slot, name))


def _at(args: Mapping[str, Any], slot: tuple[Any, ...]) -> Any:
    value: Any = args
    for key in slot:
        value = value[key]
    return value


def _pack_order(
    tensor: torch.Tensor, alone: torch.Tensor | None, row: int, packs: list[_PackRows], size: int,
) -> _PackRows | bool | None:
    """How an output's first axis holds the samples when an input pack's order explains
    it (``out.data``: a row per step of every sample, where sample ``row`` alone has its
    own steps' rows): the pack's rows; False when it is as long as the batch and the pack's
    order another (every length 1, packed in another order: a row per sample or per step
    cannot be told apart); None when no pack explains it (an ``h_n`` whose layers happen to
    be as many as the pack's rows)."""
    if tensor.dim() == 0 or alone is None or alone.dim() != tensor.dim() or alone.shape[1:] != tensor.shape[1:]:
        return None
    matching = [
        p for p in packs
        if sum(len(r) for r in p.rows) == tensor.shape[0] and len(p.rows) == size and len(p.rows[row]) == alone.shape[0]
    ]
    if not matching:
        return None
    if tensor.shape[0] == size:
        return None if all(p.in_batch_order() for p in matching) else False
    first = matching[0]
    if any(any(not torch.equal(a, b) for a, b in zip(p.rows, first.rows)) for p in matching[1:]):
        return False  # two packs with as many rows, in other orders
    return first


def _own_steps(selected: torch.Tensor, alone: torch.Tensor, steps: set[tuple[int, int]]) -> torch.Tensor:
    """A sample's row of a padded output, cut to the steps the sample has alone: each axis
    where the row has the longest sequence's steps and the sample alone its own (of one of
    the input packs or lists: ``steps`` holds a (longest, own) pair for each). The row as
    it is when another axis differs."""
    if not steps or selected.dim() != alone.dim() or selected.shape == alone.shape:
        return selected
    differ = [a for a in range(selected.dim()) if selected.shape[a] != alone.shape[a]]
    if not all((selected.shape[a], alone.shape[a]) in steps for a in differ):
        return selected
    for axis in differ:
        selected = selected.narrow(axis, 0, alone.shape[axis])
    return selected


def _input_lengths(context: Context, args: dict[str, Any], size: int, dims: Mapping[str, Any]) -> list[int] | None:
    """The sequence lengths of the batch's samples (in steps), from the lengths argument
    (relative ones a share of the padded length, the example's ``dims`` say which) or the
    tokens an attention mask marks, or None."""
    from dyncheck.invariants.padding_invariance import (
        lengths_argument, lengths_relative, mask_argument, mask_lengths, relative_padded, relative_steps, slot_value,
    )

    slot = lengths_argument(context.target)
    if slot is not None and lengths_relative(context.target, slot):
        lengths = slot_value(args, slot)
        padded = relative_padded(context.target, slot, dims)
        if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.numel() != size or not padded:
            return None
        return relative_steps(lengths, padded)
    if slot is not None:
        lengths = slot_value(args, slot)
    else:
        slot = mask_argument(context.target)
        mask = slot_value(args, slot) if slot is not None else None
        if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
            return None
        lengths = mask_lengths(context.target, slot, mask)
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.numel() != size:
        return None
    return [int(n) for n in lengths]


def _padded_past_end(
    selected: torch.Tensor, alone: torch.Tensor, lengths: list[int] | None, row: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A sample's row cut to the steps it has alone, where the model decides how many steps
    an output has (a greedy decoder that runs until every sample has ended): on the one axis
    where the row has more steps in the batch than alone, every step past its own is the
    same (padding after the sample's end: a PAD token, zero or masked scores). Returns the
    cut row and the values the padding holds (to be the same on every example: a fill taken
    from the batch, its smallest score, is not padding), or the row as it is and None;
    also where the input's lengths account for the steps (the longest sequence's against the
    sample's: pad_packed_sequence without total_length, its lengths an argument or read from
    a mask), which is reported."""
    from dyncheck.invariants.padding_invariance import padding_past

    if selected.dim() != alone.dim():
        return selected, None
    differ = [a for a in range(selected.dim()) if selected.shape[a] != alone.shape[a]]
    if len(differ) != 1:
        return selected, None
    axis, own = differ[0], alone.shape[differ[0]]
    if lengths is not None and (selected.shape[axis], own) == (max(lengths), lengths[row]):
        return selected, None
    pad = padding_past(selected, axis, own)
    return (selected, None) if pad is None else (selected.narrow(axis, 0, own), pad)


def _same_padding(context: Context, name: str, pad: torch.Tensor) -> bool:
    """Whether ``pad`` (the values a sample's steps past its end hold in output ``name``) is
    what they held on the check's earlier examples: padding is a fill of the model's own,
    not a value the batch sets."""
    seen = context.memo.setdefault("padding past the end", {})
    first = seen.setdefault(name, pad)
    return first.shape == pad.shape and bool(torch.equal(first, pad))


def _past_end_note(count: int) -> str:
    return (
        f"on {count} example{'s' if count != 1 else ''} a sample had more steps in the batch than alone, every one "
        "past its own the same (padding after its end, as a decoder that runs until every sample has ended gives): "
        "compared at its own steps"
    )


def _outputs(output: Any) -> dict[str, torch.Tensor]:
    """An output's tensors by name, a ``PackedSequence`` as the list of its sequences (one
    entry per sample, compared whole)."""
    return dict(floating_leaves(unpacked(output)))


#: The causes a failure gives when an integer input is not cut with the batch.
_WHOLE_INTEGERS = (
    "(batch statistics, per-position randomness, capacity limits; or {names}, handed whole to each sample alone "
    "as no axis of {them} is the batch's: integers that pick other samples, as a graph's edges do, would couple them)"
)


def _whole_integers(args: dict[str, Any], axes: dict[str, Any]) -> list[str]:
    """The forward arguments that are integer tensors handed whole to each sample (no batch
    axis to cut): an edge list ``[2, edges]`` of indices into the batch."""
    return [
        name for name, value in args.items()
        if axes.get(name) is None and isinstance(value, torch.Tensor) and value.dim() >= 1
        and not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool
    ]


def _rows(args: dict[str, Any], axes: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
    """``args`` cut to the batch rows ``index`` (new tensors on every call, so a call that
    writes into its inputs leaves the next one's alone); shared arguments as they are."""
    return {name: _take(value, axes[name], index) for name, value in args.items()}


class BatchInvariance(Invariant):
    name = "batch_invariance"
    summary = (
        "in eval mode each sample's output equals its output alone, and permuting the batch "
        "permutes the outputs; a failure names the module where it starts"
    )

    def applies_to(self, target: Target) -> str | None:
        unbatched = next((name for name, why in target.inferred_inputs.items() if _UNBATCHED in why), None)
        if unbatched is not None:
            return (
                f"forward takes one sequence, not a batch ({unbatched} is inferred as one: --dyncheck-explain "
                "says why): no batch to split"
            )
        return None

    def dims(self, target: Target) -> dict[str, Any]:
        """A ``"batch"`` range that reaches 2 starts at 2: a batch of 1 has no other sample
        to depend on, and drawn at the range's low end it was about half of every run."""
        bounds = _batch_bounds(target)
        if isinstance(bounds, tuple) and len(bounds) == 2 and all(isinstance(b, int) for b in bounds):
            low, high = bounds
            if low < 2 <= high:
                return {"batch": (2, high)}
        return {}

    def _rounding(
        self, context: Context, model: Any, row: dict[str, Any], seed: int, name: str, alone: torch.Tensor,
    ) -> float:
        """What a one-ulp move of the row's inputs changes in its output ``name``, times
        :data:`~dyncheck.rounding.SENSITIVITY_FACTOR`: the part of a batch-versus-alone
        difference that rounding explains (0 when the moved row cannot be run)."""
        try:
            from dyncheck.invariants.padding_invariance import keep_relative_lengths

            moved_row = keep_relative_lengths(context.target, row, nudged(row, torch.Generator().manual_seed(seed)))
            moved = _outputs(context.call(model, moved_row, seed))
        except ModelError:
            return 0.0
        return SENSITIVITY_FACTOR * largest_difference(alone, moved[name]) if name in moved else 0.0

    def _rounded_tie(
        self, context: Context, model: Any, seed: int, pair: tuple[dict[str, Any], dict[str, Any]],
        agree: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], bool],
    ) -> str | None:
        """The selections (``topk``, ``sort``, ``argmax``, ...) whose picks among scores equal
        up to rounding made the difference, when the two calls ``pair`` gives the arguments
        of (the batch and a row alone, or the batch permuted) ``agree`` once scores within
        :data:`_TIE_ULPS` units in the last place of each other are picked alike, by position
        (:class:`~dyncheck.ties.ConsistentTies`; at two offsets of the rounding, so that two
        scores either side of one cut meet at the other); None where they do not, or no
        selection ran. Tokens that repeat in a row score one ulp apart where the row sits
        in another place of a matrix product, and a router's per-sample ``topk`` then picks
        another of the equal tokens (mixture-of-depths). A selection over the whole batch
        still picks other tokens than the row alone does, and stays a finding."""
        for offset in (0.0, 0.5):
            ties = ConsistentTies(ulps=_TIE_ULPS, offset=offset)
            try:
                with ties:
                    first, second = (_outputs(context.call(model, args, seed)) for args in pair)
            except ModelError:
                return None
            if not ties.picks:
                return None
            if agree(first, second):
                return ", ".join(dict.fromkeys(pick[0] for pick in ties.picks))
        return None

    def _float64_margin(self, context: Context, args: dict[str, Any], seed: int, name: str) -> float:
        """:data:`~dyncheck.agreement.ROUNDING_FACTOR` times how far a fresh copy's float32
        output ``name`` on ``args`` lies from a fresh float64 copy's (both in eval mode,
        without autograd, as the check's calls run): two float32 calls whose matrix products
        round in another order (a sample's rows in a batch of one and of two) differ by about
        that much where sums cancel, and a sample that depends on its batch differs by far
        more. Both copies are fresh, so what a model carries between calls (a bug this check
        finds) is in neither. Random numbers the model draws in its own dtype are drawn in
        float64 for both (:class:`~dyncheck.streams.Draws`), so the two draw the same ones.
        0 when the float64 copy cannot run, draws other numbers when run again (a generator
        the seed does not reach), the draws do not line up, or the copies take different
        paths."""
        from dyncheck.agreement import _move
        from dyncheck.invariants._influence import _outputs_equal
        from dyncheck.invariants.padding_invariance import keep_relative_lengths
        from dyncheck.streams import Draws

        def float64_run(recorded: Draws) -> Any:
            wide = widened(context.fresh_model().eval(), torch.float64)
            device = str(next((p.device for p in wide.parameters()), "cpu"))
            wide_args = keep_relative_lengths(context.target, args, _move(dict(args), device, torch.float64))
            with recorded:
                return context.run(wide, Example(wide_args, seed, {}), record=False, grad=False)

        recorded = Draws()
        try:
            reference = float64_run(recorded)
            if recorded.calls:
                # Draws from a generator the seed does not reach (a bug this check finds)
                # differ between two copies: no margin can be measured then.
                if not _outputs_equal(float64_run(Draws()).output, reference.output):
                    return 0.0
            lined_up = Draws(torch.float32, recorded.calls, torch.float64)
            with lined_up:
                single = context.run(context.fresh_model().eval(), Example(args, seed, {}), record=False, grad=False)
        except ModelError:
            return 0.0
        ours, theirs = _outputs(single.output), _outputs(reference.output)
        if lined_up.lined_up() is False or reference.path != single.path or name not in ours or name not in theirs:
            return 0.0
        return ROUNDING_FACTOR * largest_difference(ours[name], theirs[name])

    def check(self, context: Context, example: Example) -> None:
        args = example.fresh_args()
        model = context.fresh_model().eval()
        # The whole batch first: a forward with no output compares nothing whatever the batch.
        trace = context.run(model, Example(args, example.seed, example.dims), grad=False)
        missing = missing_output(trace.output)
        if missing:
            return context.nothing_to_compare(missing)
        size = example.dims.get("batch")
        named = size is not None
        if named:
            if size < 2:
                return context.nothing_to_compare(_one_sample(context), drawn=True)
            inputs = context.target.spec.inputs
            axes = {name: _named_batch_axis(inputs.get(name), value, size) for name, value in args.items()}
            if not any(axis is not None for axis in axes.values()):
                return context.nothing_to_compare(
                    f"no forward argument has an axis of the batch's size; {_hint(context, args)}"
                )
        elif any(isinstance(value, nn.utils.rnn.PackedSequence) for value in args.values()):
            # A pack is a batch of sequences, whatever strategy drew it: its sequences are the samples.
            size = next(
                int(v.batch_sizes[0]) for v in args.values() if isinstance(v, nn.utils.rnn.PackedSequence)
            )
            if size < 2:
                return context.nothing_to_compare(_ONE_SAMPLE, drawn=True)
            beside = next((
                name for name, value in args.items()
                if isinstance(value, torch.Tensor) and size in value.shape[:2]
            ), None)
            if beside is not None:
                # an RNN's h_0 [layers, batch, hidden] beside the pack: which axis is its batch is not named
                return context.nothing_to_compare(
                    f"{beside} beside the PackedSequence has an axis of the batch's size, and no strategy names "
                    f"its batch axis; draw both with dyncheck's strategies, e.g. Spec(inputs={{'packed': "
                    f"packed_sequences(feature_shape=(8,)), {beside!r}: tensors(shape=(1, 'batch', 16))}})"
                )
            axes = {
                name: _named_batch_axis(None, value, size) if isinstance(value, nn.utils.rnn.PackedSequence) else None
                for name, value in args.items()
            }
        else:
            time_major = _time_major(context, model)
            size, why = _leading_size(args, time_major, _hint(context, args, time_major=bool(time_major)))
            if size is None:
                return context.nothing_to_compare(why, drawn=why.startswith(_NO_LEADING))
            axes = {
                name: 0 if isinstance(value, torch.Tensor) and value.dim() >= 1 else None
                for name, value in args.items()
            }
        whole = _outputs(trace.output)
        out_axes: dict[str, int | tuple[int, int] | None] = {}
        tolerance = context.tolerance(self.name)
        findings = []
        located: tuple[Any, ...] | None = None  # the finding's rows, alone?, words, output and its batch axis
        lists: list[str] | None = None  # the outputs' lists with one entry per sample
        alone: dict[str, torch.Tensor] = {}  # the outputs of the last sample run alone
        shorter = _shorter_than_padded(context, args, size)
        pack_rows = [_PackRows.of(pack, slot) for slot, pack in _packs(args)]
        every = [[len(r) for r in p.rows] for p in pack_rows] + _list_lengths(args, context.target.spec.inputs)
        lengths = [found for found in every if len(found) == size]
        if shorter:
            from dyncheck.invariants.padding_invariance import pad_to_longest_why

            why = pad_to_longest_why(context.target)
            context.note("pad_to_longest", lambda count: _pad_to_longest_note(count, why))
        input_lengths = _input_lengths(context, args, size, example.dims)
        views = _view_count(args, axes)
        readings: dict[str, list[_Views]] = {}  # the readings of a views output no sample refuted
        trimmed: set[str] = set()  # how a sample's row was cut to its own steps, for the notes
        pairwise: list[str] = []  # the outputs compared on their diagonal only ([batch, batch])
        for row in range(size):
            if row in shorter:
                continue
            index = torch.tensor([row])
            steps = {(max(found), found[row]) for found in lengths}
            try:
                raw = context.call(model, _rows(args, axes, index), example.seed)
            except ModelError as exc:
                smallest = _smallest_batch(context.target)
                if named and smallest is not None and smallest > 1:
                    # A batch of one is outside what the spec draws (a cache set up for a batch
                    # of 4, torchtune's KVCache): the model need not take it
                    original = getattr(exc, "original", exc)
                    return context.nothing_to_compare(
                        f"the spec fixes the batch at {smallest}, and sample {row} alone (a batch of one) raises "
                        f"{type(original).__name__} ({one_line(original)}): no sample can be run alone"
                    )
                if named:
                    # The batch ran and the sample alone cannot: it needs the rest of the batch
                    # (a BatchNorm without running statistics normalises by the batch in eval).
                    original = getattr(exc, "original", exc)
                    findings.append(
                        f"sample {row} alone (a batch of one) raises {type(original).__name__} "
                        f"({one_line(original)}) where the batch of {size} runs"
                    )
                    break
                # The leading axis was a guess from the values: a forward that refuses one
                # slice of it says the guess was wrong, not that the model is.
                return context.nothing_to_compare(_refused(exc, _hint(context, args)))
            alone = _outputs(raw)
            if lists is None:
                lists = _per_sample_lists(unpacked(trace.output), unpacked(raw), size)
            for name, tensor in whole.items():
                sample = _sample_entry(name, lists)
                if sample is not None:  # an entry of a list with one per sample: compared whole
                    entry, entry_name = sample
                    own = entry_name(0)
                    if entry != row:
                        continue
                    axis, selected = None, tensor
                else:
                    if name not in out_axes:
                        ordered = _pack_order(tensor, alone.get(name), row, pack_rows, size)
                        out_axes[name] = (
                            None if ordered is False else ordered if ordered is not None
                            else _output_batch_axis(tensor, alone.get(name), size, steps, views)
                        )
                        grouped = out_axes[name]
                        if isinstance(grouped, _Views):
                            # each view's batch one after another, or each sample's views
                            # together: both readings stand until a sample alone refutes one
                            readings[name] = [grouped, _Views(grouped.count, sample_major=True)]
                    own, axis = name, out_axes[name]
                    if isinstance(axis, tuple) and own in alone and alone[own].dim() == tensor.dim():
                        # Read as pairwise ([B, B], [1, 1] alone), as a decoder's [B, steps]
                        # output reads where it took as many steps as the batch has samples:
                        # its first axis is the batch's when a sample alone refutes the pair,
                        # or differs from its pair and is its row cut to its own steps.
                        if any(alone[own].shape[a] != 1 for a in axis):
                            axis = out_axes[name] = _output_batch_axis(tensor, alone[own], size, steps)
                        elif close(alone[own], _select(tensor, axis, index), tolerance=tolerance):
                            for batch_axis in axis:
                                first = _select(tensor, batch_axis, index)
                                cut, pad = _padded_past_end(first, alone[own], input_lengths, row)
                                if pad is not None and _same_padding(context, name, pad) and not close(
                                    alone[own], cut, tolerance=tolerance
                                ):
                                    axis = out_axes[name] = batch_axis
                                    break
                    if axis is None:
                        continue
                    if len(readings.get(name, ())) > 1 and own in alone:
                        kept = [r for r in readings[name] if not close(alone[own], r.select(tensor, index), tolerance=tolerance)]
                        if kept:
                            readings[name] = kept
                            axis = out_axes[name] = kept[0]
                    selected = _select(tensor, axis, index)
                    if own in alone:
                        cut = _own_steps(selected, alone[own], steps)
                        if cut is selected:
                            cut, pad = _padded_past_end(selected, alone[own], input_lengths, row)
                            if pad is None or not _same_padding(context, name, pad):
                                cut = selected
                            else:
                                trimmed.add("past_end")
                        else:
                            trimmed.add("own_steps")
                        selected = cut
                if own not in alone:
                    continue
                lines = close(alone[own], selected, tolerance=tolerance)
                if lines and tolerance is None:
                    # Rounding, not the batch, when the row alone moves as much under a
                    # one-ulp move of its inputs (attention saturated by large keys), or lies
                    # that far from float64 (a sum that cancels, rounded in another order).
                    margin = self._rounding(context, model, _rows(args, axes, index), example.seed, own, alone[own])
                    lines = close(alone[own], selected, tolerance=tolerance, margin=margin)
                    if lines:
                        margin = max(margin, self._float64_margin(context, _rows(args, axes, index), example.seed, own))
                        lines = close(alone[own], selected, tolerance=tolerance, margin=margin)
                    if lines:
                        def agree(ours: Any, theirs: Any, n: str = name, o: str = own, a: Any = axis, m: float = margin) -> bool:
                            # a sample's entry of a list is compared whole
                            mine = ours.get(n) if a is None or n not in ours else _select(ours[n], a, index)
                            return mine is not None and o in theirs and not close(
                                theirs[o], mine, tolerance=tolerance, margin=m
                            )

                        tie = self._rounded_tie(context, model, example.seed, (args, _rows(args, axes, index)), agree)
                        if tie is not None:
                            # this output of this row only: the others, and the permuted batch, are still judged
                            _tie_note(context, f"sample {row} differs from the same sample run alone", tie)
                            continue
                context.compared()  # not where a tie set the comparison aside
                if isinstance(axis, tuple) and name not in pairwise:
                    pairwise.append(name)
                if lines:
                    findings.append(
                        f"sample {row} differs from the same sample run alone ({name}): " + "; ".join(lines)
                        + _nan_on_one_side(selected, alone[own])
                    )
                    # the place it starts is looked for along an output's batch axis
                    located = None if sample is not None else (index, True, f"sample {row}", name, axis)
                    break
            if findings:
                break
        for key, note in (("own_steps", _own_steps_note), ("past_end", _past_end_note)):
            if key in trimmed:
                context.note(key, note)
        if pairwise:
            context.note("pairwise", lambda count: _pairwise_note(pairwise[0], count))
        order = None if findings else _sorted_order(context, args, size, example.seed)
        if not findings and order is None:
            context.note("descending", _descending_note)
        if order is not None:
            permuted_args = _rows(args, axes, order)
            permuted = _outputs(context.call(model, permuted_args, example.seed))
            for name, tensor in whole.items():
                sample = _sample_entry(name, lists or [])
                if sample is not None:
                    # entry j of the permuted batch's list is entry order[j] of the batch's
                    entry, entry_name = sample
                    theirs = entry_name(int((order == entry).nonzero()[0]))
                    if theirs not in permuted:
                        continue
                    context.compared()
                    lines = close(permuted[theirs], tensor, tolerance=tolerance)
                    if lines:
                        findings.append(
                            f"permuting the batch (order {order.tolist()}) does not permute {name} alike: "
                            + "; ".join(lines)
                        )
                        break
                    continue
                axis = out_axes.get(name)
                if axis is None or name not in permuted:
                    continue
                mine = permuted[name]
                for reading in readings.get(name, [])[1:]:
                    # Both readings of a views output stood on every sample alone (its views
                    # alike): the one the permutation bears out, if any.
                    if close(mine, _select(tensor, axis, order), tolerance=tolerance) and not close(
                        mine, _select(tensor, reading, order), tolerance=tolerance
                    ):
                        axis = reading
                if isinstance(axis, _PackRows):
                    # the permuted batch's rows in its own pack's order, put in the samples' order
                    mine = _select(mine, _PackRows.of(_at(permuted_args, axis.slot), axis.slot), torch.arange(size))
                lines = close(mine, _select(tensor, axis, order), tolerance=tolerance)
                if lines and tolerance is None:
                    # A row's place in the batch can change how its products round (a kernel
                    # takes the rows in blocks): rounding, when the batch lies that far from float64.
                    margin = self._float64_margin(context, args, example.seed, name)
                    lines = close(mine, _select(tensor, axis, order), tolerance=tolerance, margin=margin)
                    if lines and not isinstance(axis, _PackRows):
                        def agree(ours: Any, theirs: Any, n: str = name, a: Any = axis, m: float = margin) -> bool:
                            return n in ours and n in theirs and not close(
                                theirs[n], _select(ours[n], a, order), tolerance=tolerance, margin=m
                            )

                        tie = self._rounded_tie(context, model, example.seed, (args, permuted_args), agree)
                        if tie is not None:
                            _tie_note(context, f"permuting the batch does not permute {name} alike", tie)
                            continue
                if lines:
                    findings.append(
                        f"permuting the batch (order {order.tolist()}) does not permute {name} alike: "
                        + "; ".join(lines)
                    )
                    # (rows in a pack's order are not looked for module by module: each run has its own)
                    located = None if isinstance(axis, _PackRows) else (order, False, "the batch", name, axis)
                    break
        if not findings and not lists and not any(axis is not None for axis in out_axes.values()):
            return context.nothing_to_compare(
                _flattened(whole, alone, size) or _NO_OUTPUT_AXIS + _reduced_over_batch(whole, alone, size)
            )
        if findings:
            carried = None
            if located is not None and located[1]:
                carried = self._carried(context, args, axes, whole, located, example.seed, tolerance)
            cut = None if carried else _dropped_batch_axis(alone, whole, located) or self._cut_to_longest(
                context, model, args, axes, size, whole, out_axes, example
            )
            details = [] if carried else [_DRAWS] if self._draws(context, model, example) else []
            if not carried and not details and (own := _own_generator(context, example)) is not None:
                details = [_OWN_GENERATOR.format(op=own)]
            if carried is None and cut is None and located is not None and reported():
                rows, alone, words, name, axis = located

                def differs(ours: Any, theirs: Any, within: Any, name: str = name, axis: Any = axis) -> bool:
                    # as the check compares: the other run's output against the batch's cut to its rows
                    mine, other = _outputs(ours), _outputs(theirs)
                    return bool(close(other[name], _select(mine[name], axis, rows), tolerance=within or tolerance))

                details += first_coupled_module(
                    lambda: context.fresh_model().eval(),
                    lambda m, a: context.call(m, a, example.seed),
                    example.fresh_args, lambda: _rows(example.fresh_args(), axes, rows), size, rows,
                    alone=alone, sample=words, differs=differs,
                    single=lambda: _rows(example.fresh_args(), axes, torch.tensor([0])),
                )
            if not carried and located is not None and located[1] and not any(_APART in d for d in details):
                # where the module search did not say so (it found no module where they part)
                details += _paths_apart(context, args, axes, located, example.seed, trace.path)
            if not carried and not cut and not (details and details[0].startswith(_RANDOM_PREFIXES)):
                details.append(_BY_DESIGN)
            # One raise statement: Hypothesis tells failures apart by where they are raised.
            if cut is None and (integers := _whole_integers(args, axes)):
                cut = _WHOLE_INTEGERS.format(names=" and ".join(integers), them="it" if len(integers) == 1 else "them")
            raise InvariantViolation(
                carried or findings[0] + " — the output of a sample depends on the rest of the batch "
                + (cut or "(batch statistics, per-position randomness, capacity limits)") + ".",
                [findings[0], *details] if carried else details,
                path=trace.modules,
            )

    def _carried(
        self, context: Context, args: dict[str, Any], axes: dict[str, Any], whole: dict[str, torch.Tensor],
        located: tuple[Any, ...], seed: int, tolerance: Any,
    ) -> str | None:
        """Why a sample alone differs from its row in the batch, when it is not the batch: the
        batch and the rows alone run one after another on one copy, and the sample alone on
        a fresh copy agrees with the batch's row. Then forward keeps state between calls that
        changes the output (a mask cached by shape holds the first call's lengths). One more
        call, made only for a failure; None when the fresh copy differs too."""
        rows, _, words, name, axis = located
        try:
            fresh = _outputs(context.call(context.fresh_model().eval(), _rows(args, axes, rows), seed))
        except ModelError:
            return None
        if name not in fresh or close(fresh[name], _select(whole[name], axis, rows), tolerance=tolerance):
            return None
        return (
            f"{words} run alone differs from its row in the batch only after other calls on the same model: run alone "
            "on a fresh copy it agrees with the batch — forward keeps state between calls that changes the output "
            "(a cache kept on the module, keyed by shape; a counter). Compute it in each call, or key the cache by "
            "everything it depends on."
        )

    def _cut_to_longest(
        self, context: Context, model: nn.Module, args: dict[str, Any], axes: dict[str, Any], size: int,
        whole: dict[str, torch.Tensor], out_axes: dict[str, Any], example: Example,
    ) -> str | None:
        """Why a sample's output depends on its batch, when it is the number of steps: on an
        axis other than the output's batch axis, the shortest sequence alone has as many
        steps as its length where the batch has as many as its longest (``pad_packed_sequence``
        without ``total_length``). One more call, made only for a failure; None when that is
        not the cause. Where the batch axis was guessed as a pair of axes (both of the batch's
        size, as the steps are when the longest length is the batch's size), either may be
        the steps, the other the batch."""
        seed = example.seed
        lengths = _input_lengths(context, args, size, example.dims)
        if lengths is None:
            return None
        longest = max(lengths)
        short = lengths.index(min(lengths))
        own = lengths[short]
        if own == longest:
            return None
        try:
            alone = _outputs(context.call(model, _rows(args, axes, torch.tensor([short])), seed))
        except ModelError:
            return None
        for name, tensor in whole.items():
            other, batch = alone.get(name), out_axes.get(name)
            if other is None or other.dim() != tensor.dim() or batch is None or isinstance(batch, (_PackRows, _Views)):
                continue
            pairs = [(batch, s) for s in range(tensor.dim()) if s != batch] if isinstance(batch, int) else [
                (batch[0], batch[1]), (batch[1], batch[0])
            ]
            for batch_axis, steps in pairs:
                if tensor.shape[steps] != longest or other.shape[steps] != own:
                    continue
                if (tensor.shape[batch_axis], other.shape[batch_axis]) != (size, 1):
                    continue
                rest = [a for a in range(tensor.dim()) if a not in (steps, batch_axis)]
                if all(tensor.shape[a] == other.shape[a] for a in rest):
                    return (
                        f"through its shape: {name} has as many steps as the longest sequence in the batch "
                        f"({longest} here; {own} for sample {short}, the shortest, alone), as pad_packed_sequence "
                        "gives without total_length, or a loop up to lengths.max(); give total_length=<the padded "
                        "length>, or step over every padded step, so that a sample's steps line up with its input "
                        "whatever it is batched with"
                    )
        return None

    @staticmethod
    def _draws(context: Context, model: torch.nn.Module, example: Example) -> bool:
        """Whether the batch's output changes with the seed alone (in eval mode, on fresh
        copies where ``model`` runs; not when the same seed gives other numbers too, as a
        model keeping state between calls does): the model draws random numbers, the
        likeliest reason a sample's output depends on its batch."""
        from dyncheck.agreement import Config, run_config, seed_dependence

        config = Config("the batch", str(next((p.device for p in model.parameters()), "cpu")))
        try:
            first = run_config(context.fresh_model(), context.target, example, config)
            dependence = seed_dependence(context.fresh_model, context.target, example, config, first)
            if dependence is not None:
                return dependence == "seeded"
            # Floating outputs and gradients alike under any seed: a draw may still reach
            # only an integer or boolean output (PonderNet's sampled halting step). A few
            # bernoulli draws agree under another seed often (two coins, one time in four):
            # several other seeds are tried.
            mine = _exact_leaves(first)

            def under(seed: int) -> Any:
                return _exact_leaves(run_config(context.fresh_model(), context.target, example, config, rng_seed=seed))

            if not _same_leaves(mine, under(example.seed)):
                return False  # the same seed gives other numbers: state, not a draw
            return any(not _same_leaves(mine, under(example.seed + k)) for k in range(1, _OTHER_SEEDS + 1))
        except ModelError:
            return False


#: How many other seeds ``_draws`` tries before it says the integer outputs do not depend on the seed.
_OTHER_SEEDS = 4


_OWN_GENERATOR = (
    "The model draws random numbers in eval mode from a generator of its own ({op} with generator=...), "
    "which dyncheck's seed does not set: a sample's numbers depend on its place in the batch (the rows draw "
    "from one stream in turn). If sampling at inference is by design, declare Spec(skip={{'batch_invariance': "
    "...}}); else give each sample a generator of its own, or draw only in training."
)

#: How the lines that blame random numbers start (no other cause is offered beside them).
_RANDOM_PREFIXES = ("The model draws random numbers in eval mode",)


def _own_generator(context: Context, example: Example) -> str | None:
    """The random op a copy of the model, in eval mode, calls on ``example`` with a
    ``generator=`` of its own (torch.multinomial(p, 1, generator=g), g seeded in forward);
    None when it calls none, or raises."""
    from torch.overrides import TorchFunctionMode

    from dyncheck.streams import RANDOM_OPS

    found: list[str] = []

    class Generators(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            name = getattr(func, "__name__", "")
            if not found and name in RANDOM_OPS and isinstance((kwargs or {}).get("generator"), torch.Generator):
                found.append(name)
            return func(*args, **(kwargs or {}))

    try:
        with Generators():
            context.call(context.fresh_model().eval(), example.fresh_args(), example.seed)
    except Exception:
        return None
    return found[0] if found else None


def _nan_on_one_side(in_batch: Any, alone: Any) -> str:
    """Where one of the two is NaN and the other a number, that said in words (the
    differences read only "nan"): a sample alone made NaN by a statistic that needs the
    batch (the std of one value), or a batch whose NaN reaches a sample that has none."""
    if not (isinstance(in_batch, torch.Tensor) and isinstance(alone, torch.Tensor)) or in_batch.shape != alone.shape:
        return ""
    if not (in_batch.is_floating_point() and alone.is_floating_point()):
        return ""
    only_alone = int((alone.isnan() & ~in_batch.isnan()).sum())
    only_batch = int((in_batch.isnan() & ~alone.isnan()).sum())
    if only_alone:
        return (
            f"; alone it gives NaN at {only_alone} of {alone.numel()} places where in the batch it gives numbers (a "
            "statistic over the batch, undefined for one sample: the std or variance of one value)"
        )
    if only_batch:
        return (
            f"; in the batch it gives NaN at {only_batch} of {alone.numel()} places where alone it gives numbers "
            "(another sample's NaN reaches it)"
        )
    return ""


def _exact_leaves(run: Any) -> list[tuple[str, torch.Tensor]]:
    """The integer and boolean tensors a run's output holds, by name."""
    return [(name, value) for name, value in leaves(run.output) if isinstance(value, torch.Tensor)
            and not value.is_floating_point() and not value.is_complex()]


def _same_leaves(a: list[tuple[str, torch.Tensor]], b: list[tuple[str, torch.Tensor]]) -> bool:
    return len(a) == len(b) and all(
        n == m and x.shape == y.shape and torch.equal(x.cpu(), y.cpu()) for (n, x), (m, y) in zip(a, b)
    )
