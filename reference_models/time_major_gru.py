"""A time-major GRU tagger: one tag score vector per step of each sequence.

Not one of the founding documents' systems: the correct counterpart of the padding bugs in
``buggy/`` for per-step outputs and ``batch_first=False``. The input is ``[time, batch,
input_size]`` as ``nn.GRU`` takes it by default; the batch is packed without sorting, and
``pad_packed_sequence`` is given ``total_length`` so that the output has one step per
padded input step (without it, the output is cut to the batch's longest sequence, and its
shape depends on the other rows). The result is returned batch first,
``[batch, time, num_tags]``, like every other model here.

What is dynamic: the number of steps differs per sequence, set by ``lengths``. The tags
of a sequence's valid steps must not depend on its padding or on the other sequences.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["GRUTagger"]


class GRUTagger(nn.Module):
    # No step reads a later one: causality checks it.
    __dyncheck__ = {"causal": True}

    def __init__(self, input_size, hidden_size, num_tags):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)  # batch_first=False: [time, batch, features]
        self.fc = nn.Linear(hidden_size, num_tags)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        output, _ = self.gru(packed)
        # total_length keeps every padded step: the output's time axis is the input's.
        output, _ = pad_packed_sequence(output, total_length=x.size(0))  # [time, batch, hidden]
        return self.fc(output.transpose(0, 1))  # [batch, time, num_tags]
