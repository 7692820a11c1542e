"""LocalAttentionLM: GPT-Neo's local attention, its scores pinned to float32.

Not a founding model: the counterpart of a false alarm met on a language model from a
library people use. GPT-Neo computes its attention scores in float32 whatever the model's
dtype (``query.to(torch.float32)``, for half-precision training), masks keys outside its
window with ``torch.finfo(float32).min``, and adds the padding mask, made in the model's
dtype. Where a padded query's window holds only padding, every key is masked, and the row
is a tie between "masked" values:

* in the float32 model, the window mask and the padding mask are both float32's smallest
  number, and the softmax spreads over every key;
* in a float64 copy, the padding mask is float64's smallest number, far below float32's,
  and the softmax puts everything on the key outside the window.

Neither dtype computes that second result on its own: ``dtype_agreement`` runs its
float64 reference with such casts kept in float64 (where the float32 model's cast changes
nothing) and compares the float32 model with that.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LocalAttentionLM"]


class LocalAttentionLM(nn.Module):
    def __init__(self, vocab_size=32, hidden_size=8, window=2):
        super().__init__()
        self.window = window
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        # Scores in float32, as GPT-Neo keeps them to avoid overflow in float16.
        scores = self.q_proj(h).to(torch.float32) @ self.k_proj(h).to(torch.float32).transpose(-1, -2)
        time = input_ids.shape[1]
        query = torch.arange(time, device=h.device)[:, None]
        key = torch.arange(time, device=h.device)[None, :]
        in_window = (key <= query) & (key > query - self.window)
        scores = torch.where(in_window, scores, torch.finfo(scores.dtype).min)
        padding = (1 - attention_mask[:, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
        weights = F.softmax(scores + padding, dim=-1).to(h.dtype)
        return self.head(h + self.out_proj(weights @ self.v_proj(h)))
