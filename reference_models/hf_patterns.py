"""A small encoder written the way Hugging Face models write theirs, with four patterns that
drew false alarms from grad_isolation or padding_invariance on library models:

* a relative-position table used through ``.weight`` and never called (DeBERTa's
  ``rel_embeddings``): under a softmax over one key its gradient is exactly zero, which is
  the example's, not a multiplication by zero (rule 1 looks only at modules some example
  calls);
* scores masked by adding ``torch.finfo(dtype).min`` and a softmax pinned to float32, padded
  query rows zeroed after it (Longformer's): in a float64 copy float64's smallest number is
  -inf in float32 and a fully masked row NaN, so padding_invariance compares such an example
  in the model's own dtype;
* a segment bias used only when ``token_type_ids`` is given (XLNet's ``r_s_bias``): left
  out of the path without them, not cut off by a detach() (rule 2 looks only at parameters
  the call read);
* a block behind a hard Gumbel-softmax gate trained straight-through (SkipNet's): in
  training the block runs when the gate is closed too, as the gate's gradient is the block's
  output against the output's gradient (rule 3 counts a module whose moved output changes
  another parameter's gradient as used). In eval the gate is an argmax and the block runs
  only for the rows it opens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatternEncoder"]


class PatternEncoder(nn.Module):
    def __init__(self, vocab_size=40, hidden=16, max_positions=16, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.rel_embeddings = nn.Embedding(max_positions, hidden)
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.segment_bias = nn.Parameter(torch.randn(hidden) * 0.02)
        self.gate = nn.Linear(hidden, 2)
        self.block = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        m = attention_mask.bool()
        h = self.embed(input_ids)
        if token_type_ids is not None:
            h = h + token_type_ids[..., None].to(h.dtype) * self.segment_bias
        steps = h.shape[1]
        keys = self.key(h) + self.rel_embeddings.weight[:steps]
        scores = self.query(h) @ keys.transpose(-1, -2) / h.shape[-1] ** 0.5
        scores = scores + (~(m[:, :, None] & m[:, None, :])).to(scores.dtype) * torch.finfo(scores.dtype).min
        weights = scores.softmax(-1, dtype=torch.float32).masked_fill(~m[:, :, None], 0.0).type_as(scores)
        h = h + weights @ self.value(h)
        pooled = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
        logits = self.gate(pooled)
        if self.training:
            opened = F.gumbel_softmax(logits, tau=1.0, hard=True)[:, 1:]  # straight-through
            pooled = pooled + opened * self.block(pooled)
        else:
            opened = logits.argmax(-1) == 1
            if opened.any():
                pooled = torch.where(opened[:, None], pooled + self.block(pooled), pooled)
        return self.head(pooled)
