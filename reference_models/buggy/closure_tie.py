"""Invariant: tied_weights

A decoder that reaches the embedding matrix through a closure made in ``__init__``:
``self.output_weight = lambda: encoder.weight`` with ``encoder`` the original module.
``copy.deepcopy`` copies the function as it is, so a copy of the model (an EMA copy, a
copy for another device, a fresh replica) still decodes with the *original's* matrix, and
a backward pass through the copy writes gradients into the original. dyncheck reports
"a copy of the model computes with the original's encoder.weight".

The model itself is otherwise correct: ``.to(torch.float64)`` converts ``encoder.weight``
in place, so the closure follows. Every other invariant passes, since dyncheck builds each
fresh model anew instead of copying one whose copies are wired to the original (a float64
*copy* would still decode with the float32 original and crash).

A correct version reaches the weight through ``self`` in forward
(``F.linear(h, self.encoder.weight)``).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        encoder = self.encoder
        self.output_weight = lambda: encoder.weight  # the bug: bound to this instance's module

    def forward(self, tokens):
        hidden, _ = self.rnn(self.encoder(tokens))
        return F.linear(hidden, self.output_weight())
