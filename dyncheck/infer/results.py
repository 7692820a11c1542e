"""What inference returns: a value with its reason, or why it could not decide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Inferred", "Uninferable"]


class Uninferable(Exception):
    """Inference could not decide; the message names the argument and the Spec to write.
    ``consumers`` are the modules forward hands the argument to first, when they gave no
    input shape (parameters used through ``einsum``): resolution may probe their sizes.
    ``shape``: what the first consumer of a list of tensors takes, when it is no batch of
    sequences: resolution may probe the list as batches of it. ``reshaped``: the first
    consumer reshapes the input before any layer that gives a shape (an image cut into
    patches), so vectors and sequences are not what it takes."""

    def __init__(
        self, message: str, consumers: tuple[Any, ...] = (), shape: tuple[Any, ...] = (), reshaped: bool = False,
    ) -> None:
        super().__init__(message)
        self.consumers = consumers
        self.reshaped = reshaped
        #: what the first consumer of a list of tensors takes, when it is no batch of sequences
        self.shape = shape


@dataclass(frozen=True)
class Inferred:
    """An inferred value and the reason, shown by ``--dyncheck-explain``."""

    value: Any
    why: str
    dims: dict[str, tuple[int, int]] | None = None
