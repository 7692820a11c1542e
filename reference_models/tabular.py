"""A tabular model as fastai builds one: each categorical column embedded by its own
``nn.Embedding`` of a ``ModuleList`` (``[e(x_cat[:, i]) for i, e in enumerate(self.embeds)]``),
the embeddings concatenated with the batch-normalised continuous columns, then an MLP.

What it proves: zero-config inputs for categorical columns. ``x_cat`` is drawn as int64
``[batch, 3]``, one column a member, every column below the smallest vocabulary (3); before,
the comprehension's members were not followed, ``x_cat`` was drawn as the float features of
the head's Linear, and every check reported the Embedding refusing them. In eval mode, with
its BatchNorms' running statistics, each sample is computed alone, so ``batch_invariance``
compares it with its row in the batch.

``TokenizedTabular`` tokenizes its columns as rtdl's FT-Transformer does, each kind of column
by its own module in a loop over ``(value, module)`` pairs (``for value, module in
[(x_cont, self.cont_tokens), (x_cat, self.cat_tokens)]``), each categorical column by its own
Embedding inside a custom layer (rtdl's ``CategoricalEmbeddings``: ``self.embeddings[i](x[...,
i])`` over ``range(n_features)``, after checking the column count), then pools the tokens.
Before, no layer was seen to take either argument, and dyncheck refused both, one at a time;
then the columns were read as tokens of the first Embedding, and every check crashed on the
model's own column check.

``ParameterTokenTabular`` tokenizes the continuous columns as rtdl's ``LinearEmbeddings``
does, by raw per-column weights, ``x[..., None] * self.weight + self.bias``, no layer that
gives a width: ``x_cont`` was refused ("its first consumers give no input shape") although
alone it would have been probed; it is probed beside the categorical ids inferred first
(``dyncheck.target._features_beside``), and drawn ``[batch, 5]``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CategoricalTabular", "ParameterTokenTabular", "TokenizedTabular"]


class CategoricalTabular(nn.Module):
    def __init__(self, cardinalities=(5, 7, 3), embedding_dims=(3, 4, 2), continuous=4, hidden=8, classes=2):
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(n, d) for n, d in zip(cardinalities, embedding_dims))
        self.embedding_dropout = nn.Dropout(0.1)
        self.bn_cont = nn.BatchNorm1d(continuous)
        self.layers = nn.Sequential(
            nn.Linear(sum(embedding_dims) + continuous, hidden), nn.ReLU(), nn.BatchNorm1d(hidden),
            nn.Linear(hidden, classes),
        )

    def forward(self, x_cat, x_cont):
        x = torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], 1)
        x = torch.cat([self.embedding_dropout(x), self.bn_cont(x_cont)], 1)
        return self.layers(x)


class _CategoricalTokens(nn.Module):
    """rtdl's ``CategoricalEmbeddings``: each column by its own Embedding, after checking the
    number of columns."""

    def __init__(self, cardinalities, width):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, width) for n in cardinalities)

    def forward(self, x):
        if x.ndim < 2:
            raise ValueError(f"the input must have at least two dimensions, got x.ndim={x.ndim}")
        n_features = len(self.embeddings)
        if x.shape[-1] != n_features:
            raise ValueError(f"x.shape[-1]={x.shape[-1]}, but {n_features} cardinalities were given")
        x = torch.stack([self.embeddings[i](x[..., i]) for i in range(n_features)], dim=-2)
        return x


class TokenizedTabular(nn.Module):
    def __init__(self, continuous=5, cardinalities=(3, 4), width=8, classes=3):
        super().__init__()
        self.width = width
        self.cont_tokens = nn.Linear(continuous, continuous * width)
        self.cat_tokens = _CategoricalTokens(cardinalities, width)
        self.head = nn.Linear(width, classes)

    def forward(self, x_cont, x_cat):
        tokens = []
        for value, module in [(x_cont, self.cont_tokens), (x_cat, self.cat_tokens)]:
            if module is not None and value is not None:
                tokens.append(module(value).reshape(value.shape[0], -1, self.width))
        return self.head(torch.relu(torch.cat(tokens, 1)).mean(1))


class _ColumnWeights(nn.Module):
    """rtdl's ``LinearEmbeddings``: each continuous column times its own weight vector, plus its bias."""

    def __init__(self, columns, width):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(columns, width) / width**0.5)
        self.bias = nn.Parameter(torch.zeros(columns, width))

    def forward(self, x):
        return x[..., None] * self.weight + self.bias


class ParameterTokenTabular(TokenizedTabular):
    def __init__(self, continuous=5, cardinalities=(3, 4), width=8, classes=3):
        super().__init__(continuous, cardinalities, width, classes)
        self.cont_tokens = _ColumnWeights(continuous, width)
