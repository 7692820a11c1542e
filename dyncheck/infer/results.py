"""What inference returns: a value with its reason, or why it could not decide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Inferred", "Uninferable"]


class Uninferable(Exception):
    """Inference could not decide; the message names the argument and the Spec to write."""


@dataclass(frozen=True)
class Inferred:
    """An inferred value and the reason, shown by ``--dyncheck-explain``."""

    value: Any
    why: str
    dims: dict[str, tuple[int, int]] | None = None
