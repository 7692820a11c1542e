"""Recommendation models as their libraries lay out their inputs: a factorization machine over
categorical fields in one shared table (pytorch-fm's ``FeaturesEmbedding``), a DLRM whose
sparse features are one bag of ids per field, and a sequential recommender whose positions are
shaped like its item ids (RecBole's SASRec: ``arange(L).expand_as(item_seq)``).

What it proves: zero-config inputs for these layouts. Before, the factorization machine's
fields were drawn ``[batch, time]`` below the whole table's rows (a broadcast error with the
offsets, or a field's id past its part of the table), the DLRM's bags one id per field
(``offsets has to be a 1D Tensor``), and the recommender's items below the position table's
rows, so most of its item table was never looked up.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FactorizationMachine", "SparseBagsDLRM", "SequentialRecommender"]


class FactorizationMachine(nn.Module):
    """Fields of 6, 3 and 5 categories in one table of 14 rows, each shifted to its own rows by
    the offsets ``(0, 6, 9)``; a linear term and the pairwise interactions' sum."""

    def __init__(self, field_dims: tuple[int, ...] = (6, 3, 5), dim: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(sum(field_dims), dim)
        self.linear = nn.Embedding(sum(field_dims), 1)
        self.offsets = tuple(int(sum(field_dims[:k])) for k in range(len(field_dims)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + x.new_tensor(self.offsets).unsqueeze(0)
        e = self.embedding(x)
        interactions = 0.5 * (e.sum(1) ** 2 - (e**2).sum(1)).sum(1, keepdim=True)
        return self.linear(x).sum(1) + interactions


class SparseBagsDLRM(nn.Module):
    """Dense features through a bottom MLP, three sparse fields each a bag of ids through an
    EmbeddingBag of its own, their dot-product interactions, and a top layer."""

    def __init__(self, dense: int = 4, vocabularies: tuple[int, ...] = (7, 4, 9), dim: int = 4) -> None:
        super().__init__()
        self.bottom = nn.Linear(dense, dim)
        self.tables = nn.ModuleList(nn.EmbeddingBag(v, dim, mode="sum") for v in vocabularies)
        pairs = (len(vocabularies) + 1) * len(vocabularies) // 2
        self.top = nn.Linear(dim + pairs, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        d = torch.relu(self.bottom(dense))
        features = torch.stack([d, *(table(sparse[:, k]) for k, table in enumerate(self.tables))], 1)
        products = features @ features.transpose(1, 2)
        rows, columns = torch.triu_indices(features.shape[1], features.shape[1], offset=1)
        return self.top(torch.cat([d, products[:, rows, columns]], 1))


class SequentialRecommender(nn.Module):
    """Item ids right-padded with their lengths, learned positions up to 8 shaped like the ids,
    a GRU, and the scores of every item at each sequence's last valid step."""

    def __init__(self, items: int = 20, dim: int = 6, max_length: int = 8) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(items, dim, padding_idx=0)
        self.position_embedding = nn.Embedding(max_length, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)

    def forward(self, item_seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0).expand_as(item_seq)
        h, _ = self.gru(self.position_embedding(positions) + self.item_embedding(item_seq))
        last = h[torch.arange(h.shape[0]), lengths - 1]
        return last @ self.item_embedding.weight.T
