"""LastItemGRU: a session recommender as RecBole's GRU4Rec writes it: item ids padded with 0
after each session ``[batch, time]`` (``padding_idx=0``), a GRU over them, and the score of
the next item read off each session's last valid step, ``gather_indexes(output,
item_seq_len - 1)``.

Not a founding model: the counterpart of every RecBole sequential recommender refused. Its
lengths argument's short name (``item_seq_len``) is none of the names lengths go by, and
taking 1 from it to index the steps read as "indices into another input": the suggested Spec
drew 0, so the index was -1 and every check crashed. A length's short name forward takes 1
from is now the sequence lengths, as ``Spec(lengths=...)`` declares them.
``buggy/bidirectional_last_item.py`` reads the sessions both ways, over the padding, and
fails ``padding_invariance``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LastItemGRU"]


class LastItemGRU(nn.Module):
    def __init__(self, n_items: int = 30, dim: int = 8, bidirectional: bool = False) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(n_items, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, batch_first=True, bidirectional=bidirectional)
        self.dense = nn.Linear(dim * (2 if bidirectional else 1), dim)
        self.scores = nn.Linear(dim, n_items)

    @staticmethod
    def gather_indexes(output: torch.Tensor, gather_index: torch.Tensor) -> torch.Tensor:
        """Each row's output at its own step."""
        gather_index = gather_index.view(-1, 1, 1).expand(-1, -1, output.shape[-1])
        return output.gather(dim=1, index=gather_index).squeeze(1)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        output, _ = self.gru(self.item_embedding(item_seq))
        seq_output = self.gather_indexes(self.dense(output), item_seq_len - 1)
        return self.scores(seq_output)  # [batch, n_items]
