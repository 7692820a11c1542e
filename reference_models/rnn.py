"""An RNN over a padded batch of sequences of different lengths, using packed sequences.

Source: founding document 002, a Chinese article on dynamic computation graphs in
PyTorch ("example 2: a recurrent network whose number of steps follows the length of
each input sequence"). The batch is sorted by length, packed, run through ``nn.RNN``,
unpacked, put back in the original order, and the output at each sequence's last valid
step goes through a linear layer.

What is dynamic: the number of recurrent steps differs per sequence and per batch, set
by ``seq_lengths`` at run time. A sequence's result must not depend on the padding after
its length, nor on the other sequences in the batch or their order; the padded positions
of ``x`` must receive a zero gradient.

Notable:

* ``x`` is ``[batch, padded_length, input_size]`` and ``seq_lengths`` an integer tensor
  of ``batch`` lengths, each in ``1..padded_length`` (a zero length is refused by
  ``pack_padded_sequence``). The lengths need not be sorted: the model sorts them itself
  (``pack_padded_sequence`` is called with its default ``enforce_sorted=True``).
* ``pad_packed_sequence`` pads only to the longest length present, which may be shorter
  than ``padded_length``; indexing at ``length - 1`` makes that harmless.
* One portability fix to the founding code, marked below: the lengths handed to
  ``pack_padded_sequence`` are moved to the CPU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DynamicRNN"]


class DynamicRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(DynamicRNN, self).__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, seq_lengths):
        # Sort by length and remember the original order
        sorted_lengths, indices = torch.sort(seq_lengths, descending=True)
        _, unsorted_indices = indices.sort()

        # Pack the tensor. Portability fix (the only change to the founding code):
        # pack_padded_sequence requires its lengths as a 1-D CPU int64 tensor and raises
        # when they are on an accelerator, so a model moved to CUDA together with its
        # inputs would fail here. .cpu() is a no-op for CPU lengths; the function itself
        # converts the dtype to int64.
        packed_input = nn.utils.rnn.pack_padded_sequence(x[indices], sorted_lengths.cpu(), batch_first=True)

        # Run the RNN
        packed_output, _ = self.rnn(packed_input)

        # Unpack the output
        unpacked_output, _ = nn.utils.rnn.pad_packed_sequence(packed_output, batch_first=True)

        # Put the rows back in the original order
        output = unpacked_output[unsorted_indices]

        # Take the last valid output of each sequence
        last_output = [output[i, length-1, :] for i, length in enumerate(seq_lengths)]
        last_output = torch.stack(last_output)

        return self.fc(last_output)
