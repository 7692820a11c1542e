"""Invariant: tied_weights

A language model whose output projection is a closure over ``self`` made in ``__init__``
(``self.to_logits = lambda hidden: hidden @ self.token_emb.weight.t()``, the tied output
of a popular transformer wrapper), handed out by a factory: the target is
``closure_tie_factory:make_model``, not the class.

``copy.deepcopy`` copies a function as it is, so the copy's ``to_logits`` still holds the
*original* model: every copy (an EMA copy, an ``nn.DataParallel`` replica, a copy for
another device) decodes with, and trains, the original's ``token_emb.weight``. dyncheck
reports it under ``tied_weights`` whatever the target's form; since it must not check
copies wired to a model outside the check, it calls the factory again for each fresh
model instead of copying, and the other invariants pass (the model is correct as long as
nobody copies it).

A correct version reaches the weight through ``self`` in forward
(``hidden @ self.token_emb.weight.t()`` in ``forward``, or a method).
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["Model", "make_model"]


class Model(nn.Module):
    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.token_emb = nn.Embedding(vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.to_logits = lambda hidden: hidden @ self.token_emb.weight.t()  # the bug: holds this instance

    def forward(self, tokens):
        hidden, _ = self.rnn(self.token_emb(tokens))
        return self.to_logits(hidden)


def make_model():
    return Model(vocab_size=11, hidden_size=8)
