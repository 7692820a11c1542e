"""Invariant: batch_invariance

``TwoTower`` (CLIP's shape: text and image embeddings, every image scored against every
text) dividing its pairwise logits by the batch size, as a loss's mean can slip into the
forward: ``image_embeds @ text_embeds.T / len(image_embeds)``. A pair's score then depends
on how many other samples share its batch: an image and its text alone score otherwise
than the same pair on the diagonal of a batch. The per-sample embeddings are unchanged, so
only the pairwise output shows it.

A correct version scores each pair by the two embeddings alone (with a learned
temperature, as CLIP's ``logit_scale``, not the batch size).
"""

from __future__ import annotations

from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=8, patch=4):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        self.text_projection = nn.Linear(embed_dim, embed_dim)
        self.patch_embedding = nn.Conv2d(3, embed_dim, patch, stride=patch)
        self.visual_projection = nn.Linear(embed_dim, embed_dim)

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None):
        tokens = self.token_embedding(input_ids)
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        text_embeds = self.text_projection((tokens * mask).sum(1) / mask.sum(1).clamp(min=1))
        image_embeds = self.visual_projection(self.patch_embedding(pixel_values).mean(dim=(2, 3)))
        # BUG: the batch size scales every pair's score
        return {
            "logits_per_image": image_embeds @ text_embeds.T / len(image_embeds),
            "text_embeds": text_embeds,
            "image_embeds": image_embeds,
        }
