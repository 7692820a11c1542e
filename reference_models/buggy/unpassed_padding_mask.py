"""Invariant: padding_invariance

:class:`reference_models.key_padding.PaddedTransformerClassifier` (a classifier on
``nn.TransformerEncoder``, ``forward(tokens, src_key_padding_mask=None)``, True at padding)
that pools over the tokens only but never hands the mask to the encoder: every token
attends to the padding, so what the padding holds changes each sentence's class scores.

The correct version passes it on:
``self.encoder(self.embed(tokens), src_key_padding_mask=src_key_padding_mask)``.
"""

from __future__ import annotations

from reference_models.key_padding import PaddedTransformerClassifier

__all__ = ["Model"]


class Model(PaddedTransformerClassifier):
    def encode(self, tokens, src_key_padding_mask=None):
        return self.encoder(self.embed(tokens))  # BUG: the encoder attends to the padding
