"""Constructor arguments: defaults kept, required size-like arguments given small distinct sizes."""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from collections.abc import Callable
from typing import Any

import torch

from dyncheck.infer.results import Inferred, Uninferable

__all__ = ["INFERRED_SIZES", "infer_init"]

#: Sizes given, in order, to required size-like constructor arguments: distinct, so a
#: weight tied or transposed across layers of different shapes fails loudly.
INFERRED_SIZES = (8, 6, 4, 5, 7, 3)

#: Counts (given 2): a number of heads among them, which must divide the model's width
#: (``nn.TransformerEncoderLayer(d_model, nhead)``), as 2 does the first sizes given (8, 6, 4).
_COUNT_NAME = re.compile(
    r"(layers|depth|heads|blocks|steps|stacks|experts)$|^num_?(layers|heads|blocks)|^(nhead|n_head|num_head)$"
)
#: The longest sequence a model takes (a table of learned positions, an assert on the
#: length): given twice the longest "time" the run draws, not a size that would be shorter.
_MAX_LENGTH_NAME = re.compile(
    r"^max_?(seq|sequence|src|tgt|source|target|input|text|token|context)?_?(len|length|positions?|tokens|ctx)$"
    r"|^(max_position_embeddings|context_length|context_len|n_positions|n_ctx|num_positions)$"
)
_SIZE_NAME = re.compile(
    r"(size|dim|dims|features|channels|units|width|classes|vocab|tokens|embeddings|hidden|length|len)$"
    r"|^(n|num|in|out|d|hidden|input|output|embed|vocab)_|^(d_model|ninp|nhid|ntoken)$"
)


def infer_init(factory: Callable[..., Any], given: dict[str, Any], longest: int = 8) -> dict[str, Inferred]:
    """Values for the required constructor arguments of ``factory`` not in ``given``;
    ``longest`` is the longest ``"time"`` the run draws."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    sizes = iter(INFERRED_SIZES * 4)
    out: dict[str, Inferred] = {}
    for name, parameter in signature.parameters.items():
        if name in given or parameter.default is not inspect.Parameter.empty:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        # string annotations resolve where the parameter is declared: an inherited
        # __init__'s module, not the subclass's
        owner = factory.__init__ if inspect.isclass(factory) else factory
        annotation = _annotation(parameter.annotation, owner)
        config = _default_config(annotation)
        if config is not None:
            out[name] = Inferred(
                config, f"annotated {annotation.__qualname__}, a dataclass whose fields all have defaults"
            )
        elif annotation is bool:
            out[name] = Inferred(False, "bool argument")
        elif _int_tuple(annotation) and (_COUNT_NAME.search(name) or _SIZE_NAME.search(name)):
            # one per stage (MEGABYTE's depth: tuple): two stages, as a count or sizes would be
            counted = _COUNT_NAME.search(name) is not None
            value = (2, 2) if counted else (next(sizes), next(sizes))
            out[name] = Inferred(value, f"annotated {_shown(annotation)}: {'a count' if counted else 'a size'} per stage, two stages")
        elif annotation is float or name in ("dropout", "p", "rate", "eps") or (
            annotation is inspect.Parameter.empty and name.endswith(("_rate", "_prob"))
            and name not in ("sample_rate", "sampling_rate", "frame_rate", "bit_rate")
        ):
            dropping = "drop" in name or name in ("p", "rate") or name.endswith(("_rate", "_prob"))
            out[name] = Inferred(0.1 if dropping else 1e-5, "float argument")
        elif _COUNT_NAME.search(name):
            out[name] = Inferred(2, "a count")
        elif _MAX_LENGTH_NAME.search(name) and annotation in (int, inspect.Parameter.empty):
            out[name] = Inferred(2 * longest, f"a longest length: twice the longest 'time' drawn ({longest})")
        elif annotation is int or _SIZE_NAME.search(name):
            out[name] = Inferred(next(sizes), "a size")
        else:
            shown = ", ".join(f"{n}=..." for n in signature.parameters if n not in given)
            raise Uninferable(
                f"cannot infer constructor argument {name!r} of {_qualname(factory)}({shown}); "
                f"give it with dyncheck.Spec({_qualname(factory)}, init={{{name!r}: ...}})"
            )
    return out


def _int_tuple(annotation: Any) -> bool:
    """Whether an annotation says a tuple that ints fill: ``tuple``, ``tuple[int, ...]``,
    ``tuple[int, int]``, ``Tuple[int, ...]``."""
    import typing

    if annotation is tuple:
        return True
    if typing.get_origin(annotation) is not tuple:
        return False
    return all(a is int or a is Ellipsis for a in typing.get_args(annotation))


def _shown(annotation: Any) -> str:
    return "tuple" if annotation is tuple else str(annotation).replace("typing.", "")


def _default_config(annotation: Any) -> Any:
    """An instance of a dataclass annotation whose fields all have defaults (a model's
    config class, as Hugging Face-style models take one), else None."""
    if not (inspect.isclass(annotation) and dataclasses.is_dataclass(annotation)):
        return None
    if any(
        f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(annotation)
    ):
        return None
    try:
        return annotation()
    except Exception:  # its __post_init__ wants something: let the user give it
        return None


def _qualname(obj: Any) -> str:
    return getattr(obj, "__qualname__", type(obj).__name__)


def _annotation(annotation: Any, owner: Any) -> Any:
    """The annotation as an object; string annotations (PEP 563) are evaluated in the
    owner's module, as ``typing.get_type_hints`` does, and kept as text when that fails."""
    if not isinstance(annotation, str):
        return annotation
    simple = {"int": int, "float": float, "bool": bool, "str": str, "Tensor": torch.Tensor,
              "torch.Tensor": torch.Tensor}
    if annotation.strip() in simple:
        return simple[annotation.strip()]
    namespace = getattr(owner, "__globals__", None)
    if namespace is None:
        module = sys.modules.get(getattr(owner, "__module__", "") or "")
        namespace = vars(module) if module is not None else {}
    try:
        return eval(annotation, dict(namespace))  # noqa: S307 - what get_type_hints does
    except Exception:
        return annotation
