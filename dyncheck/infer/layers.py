"""The input a layer expects, read from its attributes (``in_features``, ``batch_first`` ...)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from hypothesis import strategies as st
from torch import nn

from dyncheck import strategies as dst
from dyncheck.infer.flow import _flow, _is_torch, _resolve_module
from dyncheck.infer.source import _forward_tree

_Shape = tuple[Any, ...]


class _Found(NamedTuple):
    """The input a layer expects: its shape, how to draw it, a description for the
    explanation, named dimension ranges, and where a ``"time"`` axis goes when the input
    is a padded sequence (``"features-last"``: after batch, as for Linear and LayerNorm;
    ``"channels-first"``: at the end, as for BatchNorm1d; None: the layer says already)."""

    shape: _Shape
    make: Callable[[_Shape], st.SearchStrategy]
    note: str
    dims: dict | None = None
    sequence: str | None = None
    #: integer token ids (an embedding's input)
    tokens: bool = False
    #: a recurrent layer's initial hidden state (its ``hx``)
    state: bool = False
    #: an EmbeddingBag's offsets (drawn as None: each row of its input a bag)
    offsets: bool = False


def _floats(shape: _Shape) -> st.SearchStrategy:
    return dst.tensors(shape=shape)


def _state(shape: _Shape) -> st.SearchStrategy:
    """A recurrent layer's initial state: values in [-1, 1], as tanh leaves a hidden state
    (at a magnitude of 1e3, float32's rounding of the recurrence is not what a model meets)."""
    return dst.tensors(shape=shape, min_value=-1.0, max_value=1.0)


def _swap(shape: _Shape, axes: tuple[int, int] | None) -> _Shape | None:
    """``shape`` with ``axes`` swapped, or None when there is nothing (valid) to swap."""
    if axes is None or not all(-len(shape) <= a < len(shape) for a in axes):
        return None
    a, b = (axis % len(shape) for axis in axes)
    if a == b:
        return None
    out = list(shape)
    out[a], out[b] = out[b], out[a]
    return tuple(out)


#: torch's attention modules, whose forward takes masks beside the sequences.
ATTENTION_MODULES = (
    nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder, nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer, nn.MultiheadAttention,
)


#: The features and channels drawn for a lazy layer's input, which takes any number.
_LAZY_FEATURES, _LAZY_CHANNELS = 8, 3


def _smallest_input(module: nn.Module, axis: int) -> int:
    """The smallest input length along spatial ``axis`` whose output has a position: at
    least the kernel's reach less the padding for a convolution; for a transposed one,
    whose output has (L - 1) * stride - 2 * padding + dilation * (kernel - 1) +
    output_padding + 1 positions, the smallest L that gives one."""
    reach = module.dilation[axis] * (module.kernel_size[axis] - 1) + 1
    padding = module.padding[axis] if isinstance(module.padding, tuple) else 0
    if not module.transposed:
        return max(1, reach - 2 * padding)
    grown = reach + module.output_padding[axis]
    return 1 + max(0, -(-(2 * padding - grown + 1) // module.stride[axis]))


#: Layers without parameters that change their input's shape: what the next layer takes is
#: not the input's. Not ``nn.Flatten``: before a Linear, the input it flattens is as often
#: already flat (``Sequential(Flatten(), Linear(784, 10))`` takes ``[batch, 784]``); nor
#: ``nn.ChannelShuffle``, which keeps the shape.
_RESHAPING = (nn.Unflatten, nn.PixelShuffle, nn.PixelUnshuffle, nn.Fold, nn.Unfold)


def reshaped_first(module: nn.Module | None, depth: int = 0) -> nn.Module | None:
    """The layer that reshapes the input first when ``module`` is that layer, a Sequential
    that does so before any layer that says a shape (a ViT's patch embedding: ``Rearrange``
    then ``LayerNorm``), or a module of the model's own whose forward hands the input first
    to such a layer and to no other layer that says a shape (a ViT inside a wrapper): the
    layers after it, and those its output reaches later, do not take the input's shape.
    None otherwise."""
    if module is not None and _reshapes(module):
        return module  # handed to the reshaping layer itself (MAE's to_patch, the patch embedding's first)
    if isinstance(module, nn.Sequential):
        for child in module.children():
            if _input_for_module(child, 1) is not None or any(True for _ in child.parameters()):
                return None
            if _reshapes(child):
                return child
        return None
    if module is None or depth > 4 or not _user_defined(module):
        return None
    tree, parameter = _forward_tree(type(module)), _entry_parameter(module, 0)
    if tree is None or parameter is None:
        return None
    direct = _flow(tree, parameter, module, opaque_modules=True)
    if not direct.consumers:
        return None
    reshaping = reshaped_first(_resolve_module(module, direct.consumers[0]), depth + 1)
    if reshaping is None or _said_by_another(module, direct, depth):
        return None
    return reshaping


def _said_by_another(module: nn.Module, direct: Any, depth: int) -> _Found | None:
    """The input's shape as a layer other than the first that ``module``'s forward hands the
    input itself to (``direct``, its flow through no submodule) says it: ``x`` added to
    ``self.skip(x)`` beside a reshaping first layer. None where none says one."""
    for expression in direct.consumers[1:]:
        inner = _resolve_module(module, expression)
        if inner is not None:
            found = _input_for_module(inner, depth + 1, direct.entries.get(expression, 0), direct.members.get(expression))
            if found is not None:
                return found
    return None


def unreshaped_input(reshaping: nn.Module, scopes: Sequence[nn.Module], depth: int = 0) -> _Found | None:
    """The input of ``reshaping`` (a layer that reshapes what it is given), worked back from
    the layer that takes its output and says a shape: the next child of a Sequential in
    ``scopes`` that holds it (a ViT's patch embedding, ``Sequential(Rearrange('b c (h p1) (w
    p2) -> b (h w) (p1 p2 c)', p1=4, p2=4), LayerNorm(48), ...)``: images of 3 channels whose
    height and width are multiples of 4). None where no such layer is found, or the layer
    cannot be undone from what it holds (einops' ``Rearrange`` with a pattern of one unknown
    length per axis; ``nn.PixelUnshuffle``, ``nn.PixelShuffle``; ``nn.Unflatten`` of the
    features)."""
    after = _taken_after(reshaping, scopes, depth)
    if after is None:
        return None
    if isinstance(reshaping, nn.Unflatten):
        return _unflattened(reshaping, after)
    if isinstance(reshaping, (nn.PixelShuffle, nn.PixelUnshuffle)):
        return _unshuffled(reshaping, after)
    if type(reshaping).__name__ == "Rearrange" and isinstance(getattr(reshaping, "pattern", None), str):
        return _unrearranged(reshaping, after)
    return None


def _taken_after(reshaping: nn.Module, scopes: Sequence[nn.Module], depth: int) -> _Found | None:
    """What the layer after ``reshaping`` in a Sequential of ``scopes`` (or one inside them)
    takes, where it says a shape; layers between without parameters are passed over (a
    Dropout), a second reshaping one ends the search."""
    seen: set[int] = set()
    for scope in scopes:
        for container in scope.modules():
            if not isinstance(container, nn.Sequential) or id(container) in seen:
                continue
            seen.add(id(container))
            children = list(container.children())
            if not any(child is reshaping for child in children):
                continue
            for child in children[next(i for i, c in enumerate(children) if c is reshaping) + 1:]:
                found = _input_for_module(child, depth + 1)
                if found is not None or _reshapes(child) or isinstance(child, nn.Flatten) or any(
                    True for _ in child.parameters()
                ):
                    return found
    return None


def _unflattened(layer: nn.Unflatten, after: _Found) -> _Found | None:
    """``Unflatten(1, (1, 28, 28))`` before a ``Conv2d(1, ...)``: the input is the features
    flattened, ``[batch, 784]``."""
    sizes = tuple(layer.unflattened_size)
    if layer.dim != 1 or not all(isinstance(s, int) and s > 0 for s in sizes) or after.shape[0] != "batch":
        return None
    if len(after.shape) != 1 + len(sizes) or any(isinstance(a, int) and a != s for a, s in zip(after.shape[1:], sizes)):
        return None
    features = math.prod(sizes)
    note = f"{after.note} after Unflatten(1, {sizes}): {features} features"
    return _Found(("batch", features), _floats, note)


def _unshuffled(layer: nn.Module, after: _Found) -> _Found | None:
    """``PixelUnshuffle(r)`` before a ``Conv2d(in_channels=C * r * r)``: images of ``C``
    channels whose height and width are multiples of ``r``; ``PixelShuffle(r)`` before one
    of ``C``: ``C * r * r`` channels, any height and width (the probe finds those that run)."""
    if len(after.shape) != 4 or after.shape[0] != "batch" or not isinstance(after.shape[1], int):
        return None
    unshuffles = isinstance(layer, nn.PixelUnshuffle)
    factor = layer.downscale_factor if unshuffles else layer.upscale_factor
    channels, bounds = after.shape[1], (after.dims or {}).items()
    if unshuffles:
        if channels % (factor * factor):
            return None
        channels //= factor * factor
        dims = {d: (factor * low, factor * high) for d, (low, high) in bounds}
        said = f"{channels} channel{'s' if channels != 1 else ''}, sizes multiples of {factor}"
        note = f"{after.note} after PixelUnshuffle({factor}): {said}"
    else:
        channels *= factor * factor
        dims = {d: (max(1, -(-low // factor)), max(1, -(-high // factor))) for d, (low, high) in bounds}
        note = f"{after.note} after PixelShuffle({factor}): {channels} channels"
    return _Found(("batch", channels, *after.shape[2:]), _floats, note, dims or None)


def _einops_axes(side: str) -> list[list[str]] | None:
    """The axes of one side of an einops pattern, each the names it groups
    (``"b c (h p1) (w p2)"``: ``[["b"], ["c"], ["h", "p1"], ["w", "p2"]]``); None for what
    is not read here (an ellipsis, a number, a nested or unclosed group)."""
    axes: list[list[str]] = []
    group: list[str] | None = None
    for token in side.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            if group is not None:
                return None
            group = []
        elif token == ")":
            if group is None:
                return None
            axes.append(group)
            group = None
        elif not token.isidentifier():
            return None
        elif group is not None:
            group.append(token)
        else:
            axes.append([token])
    return None if group is not None else axes


def _unrearranged(layer: nn.Module, after: _Found) -> _Found | None:
    """einops' ``Rearrange(pattern, **lengths)`` before a layer that reads its output's last
    axis as features (a LayerNorm or Linear over patches): the one length that axis leaves
    unknown is solved for; the input's first axis is the batch (the output's first), an axis
    whose lengths are all known is that size, one with a single unknown length a spatial
    axis that is a multiple of the others (``(h p1)``: height, a multiple of ``p1``)."""
    if after.sequence != "features-last" or not isinstance(after.shape[-1], int):
        return None
    left, arrow, right = layer.pattern.partition("->")
    source, target = _einops_axes(left), _einops_axes(right) if arrow else None
    lengths = getattr(layer, "axes_lengths", None)
    if not source or not target or not isinstance(lengths, dict):
        return None
    if not all(isinstance(v, int) for v in lengths.values()):
        return None
    known = dict(lengths)
    unknown = [name for name in target[-1] if name not in known]
    product = math.prod(known.get(name, 1) for name in target[-1])
    features = after.shape[-1]
    if len(unknown) > 1 or features % product or (not unknown and product != features):
        return None
    if unknown:
        known[unknown[0]] = features // product
    if len(source[0]) != 1 or target[0] != source[0] or source[0][0] in known:
        return None
    sizes: list[int] = []  # each axis's size, or for a spatial one the multiple it is
    spatial: list[int] = []  # the spatial axes' places in sizes
    for axis in source[1:]:
        missing = [name for name in axis if name not in known]
        if len(missing) > 1:
            return None
        if missing:
            spatial.append(len(sizes))
        sizes.append(math.prod(known.get(name, 1) for name in axis))
    if not 1 <= len(spatial) <= 3:
        return None
    names = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}[len(spatial)]
    shape = ("batch", *(names[spatial.index(i)] if i in spatial else size for i, size in enumerate(sizes)))
    multiples = [sizes[i] for i in spatial]
    dims = {dim: (multiple, multiple + 6) for dim, multiple in zip(names, multiples)}
    given = "".join(f", {k}={v}" for k, v in lengths.items())
    said = " and ".join(f"{dim} a multiple of {m}" if m > 1 else f"any {dim}" for dim, m in zip(names, multiples))
    return _Found(shape, _floats, f"Rearrange({layer.pattern!r}{given}) then {after.note}: {said}", dims)


def _reshapes(module: nn.Module) -> bool:
    """Whether ``module`` reshapes what it is given (a torch reshaping layer, einops'
    ``Rearrange``/``Reduce`` layers, or a project's own ``Rearrange`` that keeps an einops
    pattern as einops' does)."""
    return isinstance(module, _RESHAPING) or type(module).__module__.split(".")[0] == "einops" or (
        type(module).__name__ == "Rearrange" and isinstance(getattr(module, "pattern", None), str)
    )


def _input_for_module(
    module: nn.Module, depth: int, entry: int | str = 0, member: int | None = None, role: str | None = None
) -> _Found | None:
    """The input ``module`` expects, or None when the module says nothing about its
    input's shape; ``entry`` is where the argument enters a user-defined module's forward
    (a position or a keyword), ``member`` its place in a tuple handed there (an LSTM's
    ``(h0, c0)``). With ``role`` (``"state"``, ``"offsets"``: a place whose layout the layer
    fixes), a user-defined module's forward is followed only where it hands the argument on
    as it is, its shape kept."""
    if depth > 4:
        return None
    kind = type(module).__name__
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
        # LazyLinear/LazyConv* report in_features=0 until their first call, and take any
        # number then: a fixed one (the first call fixes it for good, so every example
        # must give as many).
        if isinstance(module, nn.Linear):
            return _Found(("batch", _LAZY_FEATURES), _floats, f"{kind}: any number of features, {_LAZY_FEATURES} drawn",
                          sequence="features-last")
        if isinstance(module, nn.modules.conv._ConvNd):
            spatial = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}[len(module.kernel_size)]
            dims = {}
            for axis, dim in enumerate(spatial):
                low = _smallest_input(module, axis)
                dims[dim] = (low, low + 6)
            note = f"{kind}: any number of channels, {_LAZY_CHANNELS} drawn"
            return _Found(("batch", _LAZY_CHANNELS, *spatial), _floats, note, dims)
        return None
    if isinstance(module, nn.Linear):
        note = f"Linear(in_features={module.in_features})"
        return _Found(("batch", module.in_features), _floats, note, sequence="features-last")
    if kind == "Conv1D" and isinstance(getattr(module, "nx", None), int):
        # transformers' Conv1D (GPT-2's projections): a Linear whose weight is [nx, nf]
        return _Found(("batch", module.nx), _floats, f"Conv1D(nx={module.nx})", sequence="features-last")
    if isinstance(module, nn.Bilinear):
        note = f"Bilinear(in1_features={module.in1_features})"
        return _Found(("batch", module.in1_features), _floats, note, sequence="features-last")
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        spatial = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}[
            len(module.kernel_size)
        ]
        dims = {}
        for axis, dim in enumerate(spatial):
            low = _smallest_input(module, axis)
            dims[dim] = (low, low + 6)
        note = f"{kind}(in_channels={module.in_channels})"
        return _Found(("batch", module.in_channels, *spatial), _floats, note, dims)
    if isinstance(module, (nn.GRU, nn.RNN, nn.LSTM)) and entry in (1, "hx"):
        # The initial hidden state, [num_layers * directions, batch, hidden_size] whatever
        # batch_first says; an LSTM's is the tuple (h_0, c_0), h_0 of proj_size if it has one.
        layers = module.num_layers * (2 if module.bidirectional else 1)
        note = (
            f"{kind}(hidden_size={module.hidden_size}, num_layers={module.num_layers}): its initial hidden state, "
            "in [-1, 1] as tanh leaves one"
        )
        if not isinstance(module, nn.LSTM):
            return _Found((layers, "batch", module.hidden_size), _state, note, state=True)
        projected = module.proj_size or module.hidden_size
        if member in (0, 1):  # one member of the tuple forward builds: h_0 (at proj_size) or c_0
            size = projected if member == 0 else module.hidden_size
            return _Found((layers, "batch", size), _state, f"{note}; its {('h_0', 'c_0')[member]}", state=True)

        def state(shape: _Shape) -> st.SearchStrategy:
            return st.tuples(_state((*shape[:-1], projected)), _state(shape))

        return _Found((layers, "batch", module.hidden_size), state, f"{note}; the tuple (h_0, c_0)", state=True)
    if isinstance(module, nn.RNNCellBase) and entry in (1, "hx"):
        # a cell's state, [batch, hidden_size]; an LSTMCell's is the tuple (h, c)
        note = f"{kind}(hidden_size={module.hidden_size}): its hidden state, in [-1, 1] as tanh leaves one"
        shape = ("batch", module.hidden_size)
        if not isinstance(module, nn.LSTMCell) or member in (0, 1):
            suffix = f"; its {('h', 'c')[member]}" if isinstance(module, nn.LSTMCell) else ""
            return _Found(shape, _state, note + suffix, state=True)
        return _Found(shape, lambda s: st.tuples(_state(s), _state(s)), f"{note}; the tuple (h, c)", state=True)
    if isinstance(module, nn.RNNBase):
        layout = ("batch", "time") if module.batch_first else ("time", "batch")
        note = f"{kind}(input_size={module.input_size}, batch_first={module.batch_first})"
        return _Found((*layout, module.input_size), _floats, note)
    if isinstance(module, nn.RNNCellBase):
        return _Found(("batch", module.input_size), _floats, f"{kind}(input_size={module.input_size})")
    if isinstance(module, nn.EmbeddingBag) and entry in (1, "offsets"):
        note = f"{kind}(num_embeddings={module.num_embeddings}): its offsets"
        return _Found((), lambda _: st.none(), note, offsets=True)
    if isinstance(module, nn.EmbeddingBag) and entry in (2, "per_sample_weights"):
        # with no offsets, a weight for each token of the input [batch, time]
        note = f"{kind}(num_embeddings={module.num_embeddings}): a weight per token"
        return _Found(("batch", "time"), _floats, note)
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        top = module.num_embeddings - 1

        def tokens(shape: _Shape) -> st.SearchStrategy:
            return dst.tensors(shape=shape, dtype=torch.long, min_value=0, max_value=top)

        note = f"{kind}(num_embeddings={module.num_embeddings}): integer tokens"
        return _Found(("batch", "time"), tokens, note, tokens=True)
    if isinstance(module, nn.LayerNorm):
        shape = tuple(module.normalized_shape)
        return _Found(("batch", *shape), _floats, f"LayerNorm({list(shape)})", sequence="features-last")
    if isinstance(module, (nn.BatchNorm1d, nn.InstanceNorm1d)):
        note = f"{kind}({module.num_features})"
        return _Found(("batch", module.num_features), _floats, note, sequence="channels-first")
    if isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        return _Found(("batch", module.num_features, "height", "width"), _floats, f"{kind}({module.num_features})")
    if isinstance(module, ATTENTION_MODULES) and "mask" in (_entry_parameter(module, entry) or ""):
        # a mask handed to torch's attention (key_padding_mask=..., src_key_padding_mask=...):
        # not an input of the query's layout; which sequence it masks is not guessed here
        return None
    if isinstance(module, nn.MultiheadAttention):
        layout = ("batch", "time") if module.batch_first else ("time", "batch")
        return _Found((*layout, module.embed_dim), _floats, f"MultiheadAttention(embed_dim={module.embed_dim})")
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        attention = module.self_attn
        layout = ("batch", "time") if attention.batch_first else ("time", "batch")
        return _Found((*layout, attention.embed_dim), _floats, f"{kind}(d_model={attention.embed_dim})")
    if isinstance(module, (nn.Sequential, nn.TransformerEncoder)):
        children = list(module.children())
        if isinstance(module, nn.TransformerEncoder):
            children = list(module.layers)
        for child in children:
            found = _input_for_module(child, depth + 1)
            if found is not None:
                return found
            if _reshapes(child):
                # a layer that reshapes it (a ViT's patch embedding, Sequential(Rearrange(...),
                # LayerNorm(48), ...)): worked back from the layer after it, where it can be
                return unreshaped_input(child, [module], depth)
            if any(True for _ in child.parameters()):
                return None  # a layer before says nothing of the input
        return None
    if _user_defined(module):
        # A user-defined submodule: follow its own forward's argument the value enters as.
        tree = _forward_tree(type(module))
        parameter = _entry_parameter(module, entry)
        if parameter is None and isinstance(entry, str) and getattr(getattr(tree, "args", None), "kwarg", None):
            parameter = entry  # a keyword its forward takes through **kwargs (see flow.keyword_entries)
        if tree is None or parameter is None:
            return None
        kept = role is not None
        if not kept:
            # its columns each embedded by their own member (rtdl's CategoricalEmbeddings)
            from dyncheck.infer.forward import embedded_columns_found

            columns = embedded_columns_found(module, tree, parameter)
            if columns is not None:
                return columns
        flow = _flow(tree, parameter, module, strict=kept, same_layout=kept)
        for index, expression in enumerate(flow.consumers):
            inner = _resolve_module(module, expression)
            reshaping = reshaped_first(inner, depth + 1) if index == 0 else None
            if reshaping is not None:
                # a ViT inside a wrapper: its patch embedding reshapes the image before any
                # layer that says a shape, and the layers after it take the patches; a layer
                # forward hands the input itself to says its shape, else it is worked back
                # from the layer after the reshaping one
                return _said_by_another(
                    module, _flow(tree, parameter, module, opaque_modules=True), depth
                ) or unreshaped_input(reshaping, [inner, module], depth)
            entry, member = flow.entries.get(expression, 0), flow.members.get(expression)
            found = (
                _input_for_module(inner, depth + 1, entry, member, role) if inner is not None
                else members_input(module, expression, depth + 1, entry, member, role)
            )
            if found is not None and found.tokens and inner is not None and "*" in expression:
                found = members_input(module, expression, depth + 1, entry, member, role) or found
            if found is not None:
                joined = flow.concatenated.get(expression)
                if (
                    not kept and found.sequence == "features-last" and joined is not None
                    and joined[1] in (-1, len(found.shape) - 1) and len(joined[0]) > 1
                ):
                    # concatenated with something else along its features (a cell's
                    # cat([input, hx], 1) into its Linear, hx the state the caller carries):
                    # the layer's width is the sum, not this argument's. Not a convolution's
                    # input, whose last axis is time (a causal pad, cat([pad, x], -1))
                    return None
                # swapped on the way there (a token embedding's Conv1d over x.permute(0, 2, 1))
                swapped = None if kept else _swap(found.shape, flow.transposed.get(expression))
                if swapped is not None:
                    found = found._replace(
                        shape=swapped,
                        note=f"{found.note}, reached through transpose{flow.transposed[expression]} in {type(module).__name__}",
                    )
                return found
    return None


def members_input(
    model: nn.Module, expression: str, depth: int, entry: int | str = 0, member: int | None = None,
    role: str | None = None,
) -> _Found | None:
    """The input of ``self.ops[i](x)`` when the members of ``ops`` are not alike (``ops.*``
    then resolves to none of them): the input every member that says one says, as a
    supernet cell's candidate operations all take the cell's input; None when they differ
    (a stack walked by index, each layer taking the previous one's output) or none says."""
    head, star, rest = expression.partition("*")
    if not star or rest:
        return None
    container = _resolve_module(model, head.rstrip(".")) if head.rstrip(".") else model
    if container is None:
        return None
    pairs = [(m, f) for m in container.children() if (f := _input_for_module(m, depth, entry, member, role)) is not None]
    found = [f for _, f in pairs]
    if not found or not all(f.shape == found[0].shape for f in found):
        return None
    vocabularies = [getattr(m, "num_embeddings", None) for m, f in pairs if f.tokens]
    if len(vocabularies) == len(pairs) and all(isinstance(v, int) for v in vocabularies):
        # ids any member may get (tables picked by a counter, pytorch-tabnet's categorical
        # columns): below the smallest vocabulary, not the first table's
        return min(pairs, key=lambda pair: pair[0].num_embeddings)[1]
    return found[0]


def _user_defined(module: nn.Module) -> bool:
    """Whether ``module``'s forward is its author's: not torch's own layer's, and not
    ``nn.Module``'s missing one."""
    return type(module).forward is not nn.Module.forward and not _is_torch(type(module))


def _entry_parameter(module: nn.Module, entry: int | str) -> str | None:
    """The name of ``module``'s forward parameter that ``entry`` (a position or a keyword of
    a call) is; None when there is none."""
    try:
        parameters = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return None
    if isinstance(entry, int):
        return parameters[entry] if 0 <= entry < len(parameters) else None
    return entry if entry in parameters else None
