"""A CTC acoustic model, as speech recognition recipes write it: a strided Conv1d subsamples
the frames, the output lengths follow by the convolution's formula (``(lengths - 3) // 2 +
1``), a bidirectional LSTM runs packed over them, and forward returns time-major
log-probabilities (as ``F.ctc_loss`` takes them) with their lengths.

What it proves: sequences too short for a convolution's kernel are not read as lengths
whose longest must be the padded length. A row of two frames has no output frame, and
packing it raises; before, the length probe (every sequence one step shorter than the
padded length 3) took that for a model that needs its longest sequence padded to exactly
its length, drew the lengths so, and every check still raised on the short rows. Now one
step shorter at a longer padded length runs, so the lengths are probed for the shortest
row that runs instead: ``min_length=3``, and ``packed_rnn`` and ``padding_invariance``
compare the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["CTCModel"]


class CTCModel(nn.Module):
    def __init__(self, n_feats=8, channels=12, hidden=16, vocab=6):
        super().__init__()
        self.conv = nn.Conv1d(n_feats, channels, kernel_size=3, stride=2)
        self.lstm = nn.LSTM(channels, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(2 * hidden, vocab)

    def forward(self, feats, lengths):
        h = F.relu(self.conv(feats.transpose(1, 2))).transpose(1, 2)
        out_lengths = torch.div(lengths - 3, 2, rounding_mode="floor") + 1
        packed = pack_padded_sequence(h, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
        log_probs = self.proj(out).log_softmax(-1).transpose(0, 1)
        return log_probs, out_lengths
