"""Models that decide their own number of steps or unroll a cell by hand: a greedy decoder
whose batch runs until every sample has ended (a sample alone stops at its own end), and a
GRU cell stepped over padded sequences, whose lengths make its per-step input a sequence."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from dyncheck.invariants.batch_invariance import _padded_past_end
from dyncheck.invariants.padding_invariance import _padded_past_end as _padding_past_end
from dyncheck.target import resolve

DECODER = "reference_models.greedy_decoder:GreedyDecoder"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_greedy_decoder_is_compared_at_each_samples_own_steps(dyncheck_run, seed):
    # Seeds 1 and 2 draw batches that decode as many steps as they have samples: the
    # tokens [B, B] read as pairwise ([1, 1] alone) until a sample alone says otherwise.
    run = dyncheck_run("--dyncheck", DECODER, "--dyncheck-invariants=batch_invariance", f"--dyncheck-seed={seed}")
    assert run.outcomes() == {f"dyncheck::{DECODER}::batch_invariance": "PASSED"}, run.text
    assert re.search(
        r"on \d+ examples? a sample had more steps in the batch than alone, every one past its own the same "
        r"\(padding after its end, as a decoder that runs until every sample has ended gives\): compared at its "
        r"own steps",
        run.text,
    ), run.text


def test_a_decoder_that_stops_at_the_first_end_cuts_the_others_short(dyncheck_run):
    target = "reference_models.buggy.any_ended_decoder:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=3")
    assert run.outcomes() == {f"dyncheck::{target}::batch_invariance": "FAILED"}, run.text
    # the sample alone decodes further than its row of the batch: no padding explains it
    assert re.search(
        r"sample \d differs from the same sample run alone \(output\[0\]\): The values for attribute 'shape' do "
        r"not match: torch.Size\(\[1, (\d)\]\) != torch.Size\(\[1, (?!\1)\d\]\)",
        run.failure("::batch_invariance"),
    ), run.text


def test_only_a_tail_of_one_value_is_cut_as_padding():
    row = torch.tensor([[5, 2, 0, 0]])
    cut, pad = _padded_past_end(row, torch.tensor([[5, 2]]), None, 0)
    assert torch.equal(cut, row[:, :2]) and torch.equal(pad, torch.tensor([0]))
    # every step past the sample's own the same vector (scores masked to one value per token)
    scores = torch.tensor([[[1.0, 2.0], [0.0, -1.0], [0.0, -1.0]]])
    cut, pad = _padded_past_end(scores, torch.zeros(1, 1, 2), None, 0)
    assert torch.equal(cut, scores[:, :1]) and torch.equal(pad, torch.tensor([-1.0, 0.0]))
    # tokens after the end that are not padding: left whole, and the shapes differ
    other = torch.tensor([[5, 2, 3, 0]])
    assert _padded_past_end(other, torch.tensor([[5, 2]]), None, 0) == (other, None)
    # the batch's row shorter than the sample alone: cut short, not padded
    short = row[:, :1]
    assert _padded_past_end(short, torch.tensor([[5, 2]]), None, 0) == (short, None)
    # two axes differ: not one output's own steps
    wide = torch.zeros(1, 3, 3)
    assert _padded_past_end(wide, torch.zeros(1, 2, 2), None, 0)[0] is wide
    # the longest input length in the batch against the sample's own: pad_packed_sequence
    # without total_length, reported by batch_invariance (buggy/short_total_length.py)
    assert _padded_past_end(row, torch.tensor([[5, 2]]), [4, 2], 1)[0] is row
    assert torch.equal(_padded_past_end(row, torch.tensor([[5, 2]]), [3, 2], 1)[0], row[:, :2])


def test_padding_invariance_reads_a_padded_tail_row_by_row():
    value = torch.tensor([[1, 2, 0], [3, 4, 5]])  # [batch, steps]; row 0 alone had 2 steps, row 1 all 3
    assert _padding_past_end(value, 0, 1, {0: 2, 1: 3})
    assert not _padding_past_end(value, 0, 1, {0: 1, 1: 3})  # row 0's tail [2, 0] is not one value
    assert not _padding_past_end(value[:, :2], 0, 1, {0: 2, 1: 3})  # a row alone longer than the batch's


SOURCE_LENGTHS = """
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    PAD, START, END = 0, 1, 2

    class PackedDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(4, 12)
            self.encoder = nn.GRU(12, 12, batch_first=True)
            self.cell = nn.GRUCell(12, 12)
            self.scores = nn.Linear(12, 4)

        def forward(self, source, lengths):
            packed = pack_padded_sequence(self.embedding(source), lengths.cpu(), batch_first=True, enforce_sorted=False)
            hidden = self.encoder(packed)[1][0]
            token = torch.full((source.size(0),), START)
            ended = torch.zeros(source.size(0), dtype=torch.bool)
            tokens = []
            while not bool(ended.all()) and len(tokens) < 6:
                hidden = self.cell(self.embedding(token), hidden)
                token = self.scores(hidden).argmax(-1).masked_fill(ended, PAD)
                tokens.append(token)
                ended = ended | (token == END)
            return torch.stack(tokens, 1)
"""


def test_decoded_steps_beside_source_lengths_are_not_the_padded_length(dyncheck_run, pytester):
    # The source is padded and has lengths; the decoded steps follow neither its padded length
    # nor the lengths: padding_invariance compares each row at the steps it decodes alone.
    pytester.makepyfile(decoders=SOURCE_LENGTHS)
    target = "decoders:PackedDecoder"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=batch_invariance,padding_invariance")
    assert run.outcomes() == {
        f"dyncheck::{target}::batch_invariance": "PASSED",
        f"dyncheck::{target}::padding_invariance": "PASSED",
    }, run.text


def test_lengths_beside_vectors_a_cell_reads_make_them_sequences():
    target = resolve("reference_models.unrolled_cell:UnrolledGRU")
    assert strategy_shape(target.spec.inputs["x"]) == ("batch", "time", 6)
    # the loop's bound, steps, is read from x.shape: the cell takes one step of axis 1 at a time
    assert target.inferred_inputs["x"] == "first consumed by cell (GRUCell(input_size=6)); a loop hands cell one step of axis 1 at a time"


class TimeMajorCell(nn.Module):
    """A cell stepped over x[t] of a time-major batch [time, batch, features]."""

    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(5, 7)

    def forward(self, x, lengths):
        state = x.new_zeros(x.size(1), 7)
        for t in range(x.size(0)):
            state = torch.where((t < lengths)[:, None], self.cell(x[t], state), state)
        return state


def test_time_major_when_only_time_major_runs(monkeypatch):
    import sys
    import types

    module = types.ModuleType("cells_here")
    module.TimeMajorCell = TimeMajorCell
    monkeypatch.setattr(TimeMajorCell, "__module__", "cells_here")
    monkeypatch.setitem(sys.modules, "cells_here", module)
    target = resolve("cells_here:TimeMajorCell")
    assert strategy_shape(target.spec.inputs["x"]) == ("time", "batch", 5)
    # read from the loop over x.size(0) (before, found by calling it batch first, then time first)
    assert target.inferred_inputs["x"].endswith("a loop hands cell one step of axis 0 at a time")


def strategy_shape(strategy):
    from dyncheck.examples import strategy_arguments

    assert strategy_arguments(strategy).get("dtype", torch.float32) == torch.float32
    return tuple(strategy_arguments(strategy)["shape"])


def test_the_inferred_lengths_and_sequences_run_every_check(dyncheck_run):
    target = "reference_models.unrolled_cell:UnrolledGRU"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=padding_invariance,causality")
    assert run.outcomes() == {
        f"dyncheck::{target}::padding_invariance": "PASSED",
        f"dyncheck::{target}::causality": "PASSED",
    }, run.text


NOT_PADDING = """
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from dyncheck.strategies import attention_masks, tensors
    from reference_models.greedy_decoder import GreedyDecoder


    class BatchFilled(GreedyDecoder):
        '''Scores past a sample's end filled with the smallest score of the whole batch: one
        value along the steps, but set by the other samples.'''

        def forward(self, source):
            tokens, scores = super().forward(source)
            ended = (tokens == 0) & (scores == 0).all(-1)
            return tokens, scores.masked_fill(ended[..., None], float(scores.min()))


    class MaskedPack(nn.Module):
        '''pad_packed_sequence without total_length, its lengths read from a mask.'''

        __dyncheck__ = {"inputs": {"x": tensors(shape=("batch", "time", 4)), "mask": attention_masks(dtype=torch.bool)}}

        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(4, 6, batch_first=True)

        def forward(self, x, mask):
            packed = pack_padded_sequence(x, mask.sum(1).cpu(), batch_first=True, enforce_sorted=False)
            return pad_packed_sequence(self.rnn(packed)[0], batch_first=True)[0]
"""


def test_a_fill_the_batch_sets_or_steps_a_mask_counts_are_not_padding(dyncheck_run, pytester):
    # The steps past a sample's end must hold the same values on every example (a fill of the
    # model's own), and steps as many as the longest sequence a mask marks are the input's.
    pytester.makepyfile(notpadding=NOT_PADDING)
    run = dyncheck_run(
        "--dyncheck", "notpadding:BatchFilled", "--dyncheck", "notpadding:MaskedPack",
        "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=3",
    )
    assert run.outcomes() == {
        "dyncheck::notpadding:BatchFilled::batch_invariance": "FAILED",
        "dyncheck::notpadding:MaskedPack::batch_invariance": "FAILED",
    }, run.text
    assert "as pad_packed_sequence gives without total_length" in run.failure("notpadding:MaskedPack::batch_invariance")
