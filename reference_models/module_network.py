"""A neural module network: each sample's program says which small modules run, in order.

A question is encoded once per call; a program of op codes per sample (``0``: no op) then
runs ``Find`` (which attends to the question) or ``Transform`` (which does not) on that
sample's state, and an answer layer reads the result. The question's encoding is computed
on every call and read only by the programs that find something.

What it proves: a result dropped on some examples is not a result computed and dropped.
On a program of ``Transform`` steps only, the encoder's output never reaches the answer;
grad_isolation reported "encoder ran, but its output never reaches the model's output, so
encoder.weight, encoder.bias never learn", which other programs refute. That finding is now
made over the run: a module whose output no example reads (``buggy/dropped_pooler.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from dyncheck.strategies import tensors

__all__ = ["ModuleNetwork"]


class Find(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.fc = nn.Linear(size, size)

    def forward(self, state, question):
        return torch.relu(self.fc(state * question))


class Transform(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.fc = nn.Linear(size, size)

    def forward(self, state, question):
        return torch.tanh(self.fc(state)) + state


class ModuleNetwork(nn.Module):
    __dyncheck__ = {
        "inputs": {
            "question": tensors(shape=("batch", 8)),
            "program": tensors(shape=("batch", "steps"), dtype=torch.int64, min_value=0, max_value=2),
        },
        "dims": {"steps": (1, 3)},
    }

    def __init__(self, input_size=8, hidden_size=6, num_answers=4):
        super().__init__()
        self.encoder = nn.Linear(input_size, hidden_size)
        self.ops = nn.ModuleList([Find(hidden_size), Transform(hidden_size)])
        self.answer = nn.Linear(hidden_size, num_answers)

    def forward(self, question, program):
        encoded = torch.tanh(self.encoder(question))
        answers = []
        for sample, codes in enumerate(program.tolist()):
            state = torch.ones_like(encoded[sample])
            for code in codes:
                if code:
                    state = self.ops[code - 1](state, encoded[sample])
            answers.append(self.answer(state))
        return torch.stack(answers)
