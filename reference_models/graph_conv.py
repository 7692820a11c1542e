"""A two-layer graph convolution written by hand, as PyTorch Geometric-style code does:
``forward(self, x, edge_index)``, node features ``x`` and ``edge_index`` of shape
``[2, edges]`` whose rows are source and target nodes, messages summed with ``index_add_``
and averaged over each node's incoming edges.

What it proves: an argument that holds indices into another input cannot be read from the
layer its picks reach (``lin1`` takes ``x[src]``, not ``edge_index``); drawn as that layer's
floats it crashed every check. Zero-config it is a one-line error giving the Spec below,
which is what this class declares: node ids below the smallest node count, and no
``batch_invariance`` (a node's output depends on its neighbours: the nodes are the batch
axis, coupled through the edges by design).
"""

from __future__ import annotations

import torch
from torch import nn

from dyncheck.strategies import tensors

__all__ = ["GraphConv"]


class GraphConv(nn.Module):
    __dyncheck__ = {
        "inputs": {"edge_index": tensors(shape=(2, "edges"), dtype=torch.int64, max_value=3)},
        "dims": {"batch": (4, 8)},
        "skip": {"batch_invariance": "samples are coupled through edge_index"},
    }

    def __init__(self, features=5, hidden=8, classes=3):
        super().__init__()
        self.lin1 = nn.Linear(features, hidden)
        self.lin2 = nn.Linear(hidden, classes)

    @staticmethod
    def propagate(x, edge_index):
        src, dst = edge_index
        out = torch.zeros_like(x).index_add_(0, dst, x[src])
        degree = torch.zeros(x.shape[0], dtype=x.dtype).index_add_(0, dst, torch.ones_like(dst, dtype=x.dtype))
        return out / degree.clamp(min=1)[:, None]

    def forward(self, x, edge_index):
        h = torch.relu(self.lin1(self.propagate(x, edge_index)))
        return self.lin2(self.propagate(h, edge_index))
