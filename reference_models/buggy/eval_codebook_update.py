"""Invariant: purity, determinism, batch_invariance

A VQ-VAE whose EMA codebook update lost its ``self.training`` guard in a refactor: the
codebook moves towards every batch it quantises at inference too, so serving the model
changes it, and the same input quantises to other codes from call to call. ``purity``
reports the buffers changed in eval mode; ``determinism``, which compares two calls in eval
mode too where the model's code reads ``self.training``, reports the second call's
different outputs; ``batch_invariance`` sees a sample alone differ from its row in the batch
only after other calls on the same model.

A correct version updates the codebook only in training
(``reference_models/ema_codebook.py``).
"""

from __future__ import annotations

from reference_models.ema_codebook import EMAQuantizedAutoencoder

__all__ = ["Model"]


class Model(EMAQuantizedAutoencoder):
    def forward(self, x):
        quantised, codes = self.vq(self.encoder(x), update=True)  # the bug: in eval mode too
        return {"reconstruction": self.decoder(quantised), "codes": codes}
