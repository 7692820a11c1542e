"""An attention sequence-to-sequence model over packed sequences, in the layout of the
well-known seq2seq tutorials: time-major source and target token ids, the source's lengths
named ``src_len`` and handed to ``pack_padded_sequence`` inside the encoder, a bidirectional
GRU encoder, additive attention masked where the source holds the padding token, and a
decoder that takes the target token (teacher forcing) or its own best guess at each step,
chosen by ``random.random()``.

Not a founding model: before, dyncheck drew ``src_len`` as features (its name is not one of
the lengths' names) and the token ids batch first, and every check reported a crash. Lengths
are now also found where forward hands them, to ``pack_padded_sequence`` as its lengths, and
the ids' layout where the encoder submodule embeds and packs them (time-major, as the pack's
``batch_first=False`` says). The attention finds the padding by its value (``src != 0``), so
the model is right only for batches padded with 0, which it declares: ``padding_value``.
"""

from __future__ import annotations

import random

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["PackedSeq2Seq"]

PAD = 0


class _Encoder(nn.Module):
    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, bidirectional=True)
        self.bridge = nn.Linear(2 * dim, dim)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor):
        packed = pack_padded_sequence(self.embedding(src), src_len.cpu(), enforce_sorted=False)
        outputs, hidden = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, total_length=src.size(0))  # [time, batch, 2 * dim]
        return outputs, torch.tanh(self.bridge(torch.cat((hidden[-2], hidden[-1]), 1)))


class _Decoder(nn.Module):
    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.energy = nn.Linear(3 * dim, dim)
        self.score = nn.Linear(dim, 1, bias=False)
        self.rnn = nn.GRU(3 * dim, dim)
        self.out = nn.Linear(4 * dim, vocab)

    def forward(self, token: torch.Tensor, hidden: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor):
        embedded = self.embedding(token).unsqueeze(0)  # [1, batch, dim]
        memory = memory.transpose(0, 1)  # [batch, time, 2 * dim]
        query = hidden.unsqueeze(1).expand(-1, memory.size(1), -1)
        scores = self.score(torch.tanh(self.energy(torch.cat((query, memory), 2)))).squeeze(2)
        weights = scores.masked_fill(~mask, -1e10).softmax(1)
        context = torch.bmm(weights.unsqueeze(1), memory).transpose(0, 1)  # [1, batch, 2 * dim]
        output, hidden = self.rnn(torch.cat((embedded, context), 2), hidden.unsqueeze(0))
        return self.out(torch.cat((output, context, embedded), 2).squeeze(0)), hidden.squeeze(0)


class PackedSeq2Seq(nn.Module):
    __dyncheck__ = {"padding_value": PAD}

    def __init__(self, vocab: int = 20, dim: int = 8, teacher_forcing: float = 0.5) -> None:
        super().__init__()
        self.encoder = _Encoder(vocab, dim)
        self.decoder = _Decoder(vocab, dim)
        self.teacher_forcing = teacher_forcing

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, trg: torch.Tensor) -> torch.Tensor:
        memory, hidden = self.encoder(src, src_len)
        mask = (src != PAD).transpose(0, 1)  # [batch, time]: True at the source's tokens
        token, steps = trg[0], []
        for t in range(1, trg.size(0)):
            scores, hidden = self.decoder(token, hidden, memory, mask)
            steps.append(scores)
            token = trg[t] if random.random() < self.teacher_forcing else scores.argmax(1)
        if not steps:  # a one-token target: nothing to predict
            return memory.new_zeros(0, trg.size(1), self.decoder.out.out_features)
        return torch.stack(steps)  # [time - 1, batch, vocab]
