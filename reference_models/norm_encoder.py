"""A small transformer encoder that ends in a LayerNorm: PyTorch's own
``nn.TransformerEncoder`` with its final ``norm``.

What it proves: a loss under which every output element matters. The sum of a LayerNorm's
output is the sum of its bias whatever its input (gamma starts at ones), so under a plain
sum loss every parameter before the final norm would get a gradient of rounding noise
(often exactly zero), and ``self_attn.out_proj`` -- used through
``F.multi_head_attention_forward``, never called as a module -- would look like a skipped
module that received a gradient of zeros. dyncheck's default loss is a fixed random
projection of the output, so the gradients are real and the model passes every check.
"""

from __future__ import annotations

from torch import nn

__all__ = ["NormEncoder"]


class NormEncoder(nn.Module):
    def __init__(self, d_model=8, nhead=2, num_layers=2):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )

    def forward(self, x):
        return self.encoder(x)
