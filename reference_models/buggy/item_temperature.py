"""Invariant: grad_isolation

CLIP's two towers with the learnable temperature read through ``.item()``:
``self.logit_scale.exp().item() * image_embeds @ text_embeds.T``. The scores are right, but
the temperature is a plain number in the graph and never learns. It is a parameter of the
model itself, owned by no submodule; dyncheck reports "the model ran, but its own
logit_scale is not connected to the output through autograd".

A correct version multiplies by the tensor, ``self.logit_scale.exp() * ...``
(``reference_models.two_tower``).
"""

from __future__ import annotations

from reference_models.two_tower import TwoTower

__all__ = ["Model"]


class Model(TwoTower):
    def forward(self, input_ids=None, pixel_values=None, attention_mask=None):
        tokens = self.token_embedding(input_ids)
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        text_embeds = self.text_projection((tokens * mask).sum(1) / mask.sum(1).clamp(min=1))
        patches = self.patch_embedding(pixel_values)
        image_embeds = self.visual_projection(patches.mean(dim=(2, 3)))
        return {
            # the bug: .item() turns the temperature into a constant of the graph
            "logits_per_image": self.logit_scale.exp().item() * image_embeds @ text_embeds.T,
            "text_embeds": text_embeds,
            "image_embeds": image_embeds,
        }
