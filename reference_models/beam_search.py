"""A decoder that runs a beam search for each sample of the batch in turn.

Not one of the founding documents' systems: the pattern of a beam-search ``generate`` that
decodes one source at a time (a translation model's inference path, written as a loop over
the batch). A linear layer encodes each source vector into the first hidden state; a GRU
cell then grows ``beam`` hypotheses a token at a time, for at most ``max_steps`` steps or
until every hypothesis has emitted the end token. The best hypothesis of each sample is
returned, padded with the end token to the longest in the batch, with its score.

What is dynamic: the number of steps, the hypotheses kept and their parents differ per
sample and per step. The outer loop walks the samples (``for b in range(source.size(0))``)
and starts each one's state anew (``hidden = ...(source[b])``); only the inner loop over the
steps carries a state. Inference reads the source as a batch of vectors, not a sequence
whose steps the outer loop walks. When a loop whose body assigned a name it read anywhere
counted as one that carries a state, the source was drawn as [time, batch, 10] and every
check reported the GRU cell's error on a 3-D hidden state.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BeamSearchDecoder", "START", "END"]

START, END = 1, 2


class BeamSearchDecoder(nn.Module):
    def __init__(self, source_size: int = 10, hidden_size: int = 16, vocab_size: int = 11, beam: int = 3,
                 max_steps: int = 4):
        super().__init__()
        self.encoder = nn.Linear(source_size, hidden_size)
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.cell = nn.GRUCell(hidden_size, hidden_size)
        self.scores = nn.Linear(hidden_size, vocab_size)
        self.beam, self.max_steps = beam, max_steps

    def forward(self, source):
        best = []
        for b in range(source.size(0)):
            hidden = torch.tanh(self.encoder(source[b])).unsqueeze(0)  # one hypothesis: [1, hidden]
            tokens = torch.full((1, 1), START, dtype=torch.long, device=source.device)
            scores = source.new_zeros(1)
            ended = torch.zeros(1, dtype=torch.bool, device=source.device)
            for _ in range(self.max_steps):
                hidden = self.cell(self.embedding(tokens[:, -1]), hidden)
                log_probs = self.scores(hidden).log_softmax(-1)
                # an ended hypothesis stays as it is: only the end token again, at no cost
                log_probs = log_probs.masked_fill(ended[:, None], float("-inf"))
                log_probs[:, END] = torch.where(ended, torch.zeros_like(scores), log_probs[:, END])
                candidates = (scores[:, None] + log_probs).flatten()
                scores, index = candidates.topk(min(self.beam, candidates.numel()))
                parent, token = index // log_probs.size(1), index % log_probs.size(1)
                tokens = torch.cat([tokens[parent], token[:, None]], 1)
                hidden, ended = hidden[parent], ended[parent] | (token == END)
                if bool(ended.all()):
                    break
            best.append((tokens[0, 1:], scores[0]))
        longest = max(len(t) for t, _ in best)
        out = torch.full((len(best), longest), END, dtype=torch.long, device=source.device)
        for i, (t, _) in enumerate(best):
            out[i, : len(t)] = t
        return out, torch.stack([s for _, s in best])
