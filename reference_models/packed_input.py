"""Models whose forward takes a ``PackedSequence``, as a collate function that packs the
batch hands it over: ``self.rnn(packed)`` with no padding in sight.

* ``PackedClassifier``: ``forward(self, packed: PackedSequence)``, a GRU whose last layer's
  final hidden state is classified (``h_n`` comes back in the batch's order).
* ``PackedTagger``: ``forward(self, packed_tokens)``, no annotation, token ids packed: each
  id embedded through the pack's ``data`` and packed again with the same ``batch_sizes``
  and indices, a bidirectional LSTM, its output padded back by ``pad_packed_sequence`` and
  tagged step by step; it returns the tags and the lengths.

What they prove: zero-config inputs for a pack, by its annotation or by a name like
``packed`` beside the recurrent layer that takes it. It is drawn as sequences of their own
lengths packed by ``pack_sequence(..., enforce_sorted=False)`` (``packed_sequences``), not as
a padded tensor (which the GRU would also have taken, and run as one padded batch).
``batch_invariance`` cuts the pack sequence by sequence and compares each sample's tags at
its own steps: padded back, the batch has as many as its longest sequence, a sequence alone
as many as its length. The buggy counterpart reads the last padded step instead of the last
valid one (``buggy/packed_last_step.py``).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

__all__ = ["PackedClassifier", "PackedTagger"]


class PackedClassifier(nn.Module):
    def __init__(self, features=4, hidden=6, classes=3):
        super().__init__()
        self.rnn = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, packed: PackedSequence):
        _, h_n = self.rnn(packed)
        return self.head(h_n[-1])


class PackedTagger(nn.Module):
    def __init__(self, vocab_size=20, embedding_dim=4, hidden=5, tags=3):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden, bidirectional=True)
        self.tag = nn.Linear(2 * hidden, tags)

    def forward(self, packed_tokens):
        embedded = packed_tokens._replace(data=self.embedding(packed_tokens.data))
        output, _ = self.lstm(embedded)
        padded, lengths = pad_packed_sequence(output)
        return self.tag(padded), lengths
