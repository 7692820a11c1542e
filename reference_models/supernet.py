"""Weight-sharing architecture search, as one-shot NAS code writes it: the architecture is
an argument of forward.

* ``Supernet``: single-path one-shot (SPOS). Each cell holds candidate operations in a
  ModuleList and runs the one its choice picks (``self.ops[choice](x)``); forward takes the
  architecture, one choice per cell (``forward(x, arch: list[int])``, zipped with the
  cells). The candidates differ (a Linear, a Linear and ReLU, a bottleneck, an identity),
  so ``cells.*`` stands for none of them alike, but all take the cell's input.
* ``SlimmableMLP``: a slimmable network, every hidden layer sliced to a required width
  multiplier (``F.linear(x, self.fc1.weight[:w], ...)``): no layer says the input's width.

What they prove: inference reads an architecture and a choice. Before, the architecture
was drawn as float features of the head and every check raised; a choice annotated ``int``
was drawn from 0 to 3 over three candidates; the input of candidates that are not alike had
no shape; and the slimmable net's input was refused because forward required a second
argument. Now the architecture is one choice per cell, each among its cell's candidates
(``coverage`` lists the paths: 4^3 architectures), a choice is each candidate's index, the
candidates' common input is the cell's, and the width is found by calling the model at the
top of the multiplier's range.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

__all__ = ["Supernet", "SlimmableMLP"]


class ChoiceCell(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ops = nn.ModuleList([
            nn.Linear(dim, dim),
            nn.Sequential(nn.Linear(dim, dim), nn.ReLU()),
            nn.Sequential(nn.Linear(dim, dim // 2), nn.GELU(), nn.Linear(dim // 2, dim)),
            nn.Identity(),
        ])

    def forward(self, x, choice: int):
        return x + self.ops[choice](x)


class Supernet(nn.Module):
    def __init__(self, input_size=8, dim=16, cells=3, classes=4):
        super().__init__()
        self.stem = nn.Linear(input_size, dim)
        self.cells = nn.ModuleList(ChoiceCell(dim) for _ in range(cells))
        self.head = nn.Linear(dim, classes)

    def forward(self, x, arch: list[int]):
        h = self.stem(x)
        for cell, choice in zip(self.cells, arch):
            h = cell(h, choice)
        return self.head(h)


class SlimmableMLP(nn.Module):
    def __init__(self, input_size=8, hidden=16, classes=4):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x, width_mult: float):
        w = max(1, int(self.fc1.out_features * width_mult))
        h = F.relu(F.linear(x, self.fc1.weight[:w], self.fc1.bias[:w]))
        h = F.relu(F.linear(h, self.fc2.weight[:w, :w], self.fc2.bias[:w]))
        return F.linear(h, self.fc3.weight[:, :w], self.fc3.bias)
