"""A convolutional text classifier as it is commonly written (Kim, 2014): token ids,
an embedding, convolutions of widths 2, 3 and 4 over time, max pooling over time, a Linear.

What it proves: zero-config inputs for a sequence model whose first layer (the embedding)
takes token ids of any length, while the widest convolution needs at least 4 of them.
Resolution calls the model on the shortest sequence of the default range, sees it raise,
and draws lengths from the shortest that runs (see ``dyncheck.target._probe_sizes``)
instead of examples every check would report as the model's crash.

Its embedding keeps sparse gradients (``sparse=True``, as large-vocabulary text models do):
the checks compare and step on gradients, and read a sparse one as the dense tensor it
stands for.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MaskedTextCNN", "TextCNN"]


class TextCNN(nn.Module):
    def __init__(self, vocab_size=40, embed_dim=8, channels=4, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, sparse=True)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, channels, width) for width in (2, 3, 4))
        self.fc = nn.Linear(3 * channels, classes)

    def forward(self, tokens):
        e = self.embed(tokens).transpose(1, 2)  # [batch, embed_dim, time]
        pooled = [torch.relu(conv(e)).amax(dim=2) for conv in self.convs]
        return self.fc(torch.cat(pooled, dim=1))


class MaskedTextCNN(nn.Module):
    """The same classifier over a padded batch with its lengths: each convolution's max is
    taken over the windows that lie wholly inside the sentence, so the padding is never
    read; a sentence shorter than a convolution's width gives that convolution zeros.

    What it proves: the size probe covers token ids with their lengths (the padded length
    starts at 4), and padding_invariance does not run a sentence of 1-3 tokens alone, which
    the model is never given (a batch shorter than 4 steps), while the extra padding is
    still asked of it."""

    def __init__(self, vocab_size=40, embed_dim=8, channels=4, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.widths = (2, 3, 4)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, channels, width) for width in self.widths)
        self.fc = nn.Linear(3 * channels, classes)

    def forward(self, tokens, lengths):
        e = self.embed(tokens).transpose(1, 2)  # [batch, embed_dim, time]
        pooled = []
        for width, conv in zip(self.widths, self.convs):
            h = torch.relu(conv(e))  # window t covers steps t .. t + width - 1
            inside = torch.arange(h.shape[2], device=h.device)[None, :] + width <= lengths[:, None]
            best = h.masked_fill(~inside[:, None, :], float("-inf")).amax(dim=2)
            pooled.append(torch.where(inside.any(dim=1)[:, None], best, torch.zeros_like(best)))
        return self.fc(torch.cat(pooled, dim=1))
