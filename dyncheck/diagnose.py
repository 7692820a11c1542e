"""Explaining a crash inside the model by what is inconsistent in it.

When the model raises, the message says what the model got wrong where dyncheck can
tell: a parameter whose shape does not fit the layer that owns it (typically a weight
tied between layers of different shapes), with every name the shared parameter has.
"""

from __future__ import annotations

from torch import nn
from torch.nn.parameter import is_lazy

__all__ = ["diagnose"]


def _expected_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    if isinstance(module, nn.Linear):
        shapes = {"weight": (module.out_features, module.in_features)}
        if module.bias is not None:
            shapes["bias"] = (module.out_features,)
        return shapes
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        return {"weight": (module.out_channels, module.in_channels // module.groups, *module.kernel_size)}
    if isinstance(module, nn.Embedding):
        return {"weight": (module.num_embeddings, module.embedding_dim)}
    return {}


def _describe(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def diagnose(model: nn.Module) -> list[str]:
    """Plain-words findings about parameters that cannot fit their layers."""
    aliases: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(parameter), []).append(name)
    findings = []
    for module_name, module in model.named_modules():
        for attribute, shape in _expected_shapes(module).items():
            parameter = getattr(module, attribute, None)
            if parameter is None or is_lazy(parameter) or tuple(parameter.shape) == shape:
                continue  # a lazy one (nn.LazyLinear before its first call) has no shape yet
            full = f"{module_name}.{attribute}" if module_name else attribute
            others = [n for n in aliases.get(id(parameter), []) if n != full]
            shared = f" (the same Parameter as {' and '.join(others)})" if others else ""
            findings.append(
                f"{full}{shared} has shape {list(parameter.shape)}, but {module_name or 'the model'} "
                f"is {_describe(module)} and needs {list(shape)}"
                + (": a weight can only be tied between layers of the same shape" if others else "")
            )
    return findings
