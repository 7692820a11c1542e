"""A forward that takes a PackedSequence: drawn as one, cut sequence by sequence by
batch_invariance, moved, cast, described and recorded as one."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence, unpack_sequence

import dyncheck.strategies as dst
from dyncheck.errors import InvalidArgument
from dyncheck.examples import describe_value, strategy_kind
from dyncheck.spec import Spec
from dyncheck.target import resolve_spec

FEW = settings(max_examples=30, deadline=None)


def _lengths(packed: PackedSequence) -> list[int]:
    return [len(s) for s in unpack_sequence(packed)]


# --------------------------------------------------------------------------- the strategy


@FEW
@given(data=st.data())
def test_packed_sequences_pack_one_sequence_a_sample_each_of_its_own_length(data: st.DataObject) -> None:
    strategy = dst.packed_sequences(feature_shape=(3,))
    with dst.dim_scope():
        packed = data.draw(strategy)
        sizes = dst.current_dims()
    assert isinstance(packed, PackedSequence) and strategy_kind(strategy) == "packed_sequences"
    lengths = _lengths(packed)
    assert len(lengths) == sizes["batch"] and all(1 <= n <= sizes["time"] for n in lengths)
    assert packed.data.shape == (sum(lengths), 3) and packed.data.dtype == torch.float32
    # packed unsorted, as pack_sequence(..., enforce_sorted=False) packs: the order travels with it
    assert packed.sorted_indices is not None and packed.batch_sizes.device.type == "cpu"


def test_packed_token_ids_stay_below_the_vocabulary_and_lengths_vary() -> None:
    from hypothesis import find

    strategy = dst.packed_sequences(batch_size=3, max_length=5, dtype=torch.long, min_value=0, max_value=19)
    packed = find(strategy, lambda p: len(set(_lengths(p))) == 3 and bool((p.data > 0).any()))
    assert packed.data.dtype == torch.long and packed.data.dim() == 1
    assert int(packed.data.min()) >= 0 and int(packed.data.max()) <= 19


def test_packed_sequences_check_their_arguments() -> None:
    with pytest.raises(InvalidArgument, match="feature_shape"):
        dst.packed_sequences(feature_shape=3)


# --------------------------------------------------------------------------- inference


class Annotated(nn.Module):
    def __init__(self, features=5, hidden=4):
        super().__init__()
        self.gru = nn.GRU(features, hidden)
        self.fc = nn.Linear(hidden, 2)

    def forward(self, packed: PackedSequence):
        return self.fc(self.gru(packed)[1][-1])


class ByName(nn.Module):
    def __init__(self, features=6, hidden=4):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)

    def forward(self, x_packed):
        return self.lstm(x_packed)[1][0][-1]


class PackedName(nn.Module):
    """A name like packed, but a Linear takes it: a tensor, as before."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, packed):
        return self.fc(packed)


def test_an_argument_annotated_packedsequence_is_drawn_packed() -> None:
    target = resolve_spec(Spec(Annotated))
    assert repr(target.spec.inputs["packed"]) == repr(dst.packed_sequences(feature_shape=(5,)))
    assert target.inferred_inputs["packed"] == (
        "first consumed by gru (GRU(input_size=5, batch_first=False)); annotated PackedSequence: one sequence "
        "of its own length per sample, packed by pack_sequence(..., enforce_sorted=False)"
    )


def test_a_name_like_packed_beside_a_recurrent_layer_is_drawn_packed_and_beside_a_linear_is_not() -> None:
    target = resolve_spec(Spec(ByName))
    assert repr(target.spec.inputs["x_packed"]) == repr(dst.packed_sequences(feature_shape=(6,)))
    assert "named like packed sequences, and lstm takes them" in target.inferred_inputs["x_packed"]
    assert strategy_kind(resolve_spec(Spec(PackedName)).spec.inputs["packed"]) == "tensors"


class PadsBack(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 6, batch_first=True)

    def forward(self, inputs):
        out, lengths = pad_packed_sequence(self.gru(inputs)[0], batch_first=True)
        return out, lengths


class ReadsAField(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.gru = nn.GRU(4, 6)

    def forward(self, x):
        return self.gru(x._replace(data=self.embedding(x.data)))[1][-1]


class PacksInAHelper(nn.Module):
    """pad_packed_sequence in forward, but a helper packs: the argument is a padded tensor."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 6, batch_first=True)

    def pack(self, x):
        return pack_padded_sequence(x, torch.full((x.shape[0],), x.shape[1]), batch_first=True)

    def forward(self, x):
        return pad_packed_sequence(self.gru(self.pack(x))[0], batch_first=True)[0]


def test_a_pack_is_read_from_its_fields_or_from_an_output_padded_back() -> None:
    target = resolve_spec(Spec(PadsBack))
    assert repr(target.spec.inputs["inputs"]) == repr(dst.packed_sequences(feature_shape=(4,)))
    assert "gru takes it as it is, and forward pads the output back with pad_packed_sequence" in (
        target.inferred_inputs["inputs"]
    )
    target = resolve_spec(Spec(ReadsAField))
    assert repr(target.spec.inputs["x"]) == repr(dst.packed_sequences(dtype=torch.long, max_value=9, min_value=0))
    assert "forward reads its _replace, which only a PackedSequence has" in target.inferred_inputs["x"]
    assert strategy_kind(resolve_spec(Spec(PacksInAHelper)).spec.inputs["x"]) == "tensors"


def test_packed_token_ids_embedded_through_the_packs_data() -> None:
    from reference_models.packed_input import PackedTagger

    target = resolve_spec(Spec(PackedTagger))
    assert repr(target.spec.inputs["packed_tokens"]) == repr(
        dst.packed_sequences(dtype=torch.long, max_value=19, min_value=0)
    )


# --------------------------------------------------------------------------- batch_invariance


def test_a_pack_is_cut_sequence_by_sequence_and_the_last_padded_step_is_caught(dyncheck_run):
    target = "reference_models.buggy.packed_last_step:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=3")
    assert run.outcomes() == {f"dyncheck::{target}::batch_invariance": "FAILED"}, run.text
    text = run.failure("::batch_invariance")
    assert re.search(r"sample \d differs from the same sample run alone \(output\): Mismatched elements", text)
    assert re.search(r"example:  packed PackedSequence of \d \(lengths \[\d(, \d)+\], data float32\[\d+, 4\]", text)


def test_a_padded_output_is_compared_at_each_samples_own_steps(dyncheck_run):
    # pad_packed_sequence pads to the batch's longest: alone, a sequence has its own length
    target = "reference_models.packed_input:PackedTagger"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=3")
    assert run.outcomes() == {f"dyncheck::{target}::batch_invariance": "PASSED"}, run.text
    assert re.search(r"on \d+ examples? a sample's padded output was compared at its own steps only", run.text)


def test_a_pack_from_a_plain_strategy_is_the_batch_too(dyncheck_run, pytester):
    pytester.makepyfile(plain="""
        import torch
        from hypothesis import strategies as st
        from torch import nn
        from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

        import dyncheck

        @st.composite
        def packs(draw):
            lengths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
            g = torch.Generator().manual_seed(draw(st.integers(0, 100)))
            return pack_sequence([torch.randn(n, 3, generator=g) for n in lengths], enforce_sorted=False)

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(3, 4, batch_first=True)
                self.fc = nn.Linear(4, 2)

            def forward(self, packed):
                padded, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True)
                return self.fc(padded.mean(1))  # the mean over the padding too

        spec = dyncheck.Spec(Model, inputs={"packed": packs()})
    """)
    run = dyncheck_run("--dyncheck", "plain:spec", "--dyncheck-invariants=batch_invariance,padding_invariance")
    assert run.outcomes()["dyncheck::plain:spec::batch_invariance"] == "FAILED", run.text


def test_padding_invariance_says_a_pack_holds_no_padding() -> None:
    from dyncheck.invariants.padding_invariance import PaddingInvariance

    target = resolve_spec(Spec(Annotated))
    assert PaddingInvariance().applies_to(target) == (
        "packed is a PackedSequence (packed_sequences), which holds no padding for forward to read "
        "(batch_invariance compares each sequence run alone with the batch)"
    )


def test_the_steps_of_an_output_of_the_batchs_size_are_not_guessed() -> None:
    from dyncheck.invariants.batch_invariance import _output_batch_axis, _own_steps

    # [time 3, batch 3, 2] against a sample alone [1, 1, 2] of length 1: either axis may be the batch
    assert _output_batch_axis(torch.zeros(3, 3, 2), torch.zeros(1, 1, 2), 3, steps={(3, 1)}) is None
    # [time 4, batch 3, 2]: the batch is the axis beside the steps
    assert _output_batch_axis(torch.zeros(4, 3, 2), torch.zeros(1, 1, 2), 3, steps={(4, 1)}) == 1
    row = torch.arange(8.0).reshape(4, 1, 2)
    assert torch.equal(_own_steps(row, torch.zeros(1, 1, 2), {(4, 1)}), row[:1])
    assert _own_steps(row, torch.zeros(2, 1, 2), {(4, 1)}) is row  # not the sample's own length: left whole
    # attention weights over the steps, [batch, time, time]: both step axes cut
    weights = torch.arange(9.0).reshape(1, 3, 3)
    assert torch.equal(_own_steps(weights, torch.zeros(1, 2, 2), {(3, 2)}), weights[:, :2, :2])
    # a second pack's steps (a decoder's target beside its source)
    assert torch.equal(_own_steps(row, torch.zeros(2, 1, 2), {(3, 1), (4, 2)}), row[:2])


def test_rows_in_a_packs_order_are_each_samples_steps() -> None:
    from dyncheck.invariants.batch_invariance import _pack_order, _PackRows, _select

    pack = pack_sequence([torch.tensor([10.0, 11.0]), torch.tensor([20.0, 21.0, 22.0]), torch.tensor([30.0])],
                         enforce_sorted=False)
    rows = _PackRows.of(pack, ("packed",))
    # out.data: 6 rows for a batch of 3, sample 1's 3 rows alone
    assert _pack_order(pack.data, torch.zeros(3), 1, [rows], 3) is rows
    assert _select(pack.data, rows, torch.tensor([1])).tolist() == [20.0, 21.0, 22.0]
    assert _select(pack.data, rows, torch.tensor([2, 0])).tolist() == [30.0, 10.0, 11.0]
    # h_n of 6 layers and directions [6, batch, hidden]: 6 rows alone too, not the sample's steps
    assert _pack_order(torch.zeros(6, 3, 2), torch.zeros(6, 1, 2), 1, [rows], 3) is None
    # every length 1, packed in another order than the batch's: a row a sample or a step, no telling
    single = pack_sequence([torch.ones(1)] * 3, enforce_sorted=False)
    reordered = _PackRows(tuple(torch.tensor([i]) for i in (2, 0, 1)), ("packed",))
    assert _pack_order(single.data, torch.zeros(1), 0, [reordered], 3) is False
    assert _pack_order(single.data, torch.zeros(1), 0, [_PackRows.of(single, ("packed",))], 3) is None


_PLAIN_H0 = """
    import torch
    from hypothesis import strategies as st
    from torch import nn
    from torch.nn.utils.rnn import pack_sequence

    import dyncheck

    BATCH = st.shared(st.integers(2, 4), key="batch")

    @st.composite
    def packs(draw):
        lengths = draw(st.lists(st.integers(1, 5), min_size=draw(BATCH), max_size=draw(BATCH)))
        g = torch.Generator().manual_seed(draw(st.integers(0, 100)))
        return pack_sequence([torch.randn(n, 4, generator=g) for n in lengths], enforce_sorted=False)

    @st.composite
    def states(draw):
        return torch.randn(1, draw(BATCH), 6, generator=torch.Generator().manual_seed(draw(st.integers(0, 100))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(4, 6)
            self.fc = nn.Linear(6, 3)

        def forward(self, packed, h0):
            return self.fc(self.gru(packed, h0)[1][-1])

    spec = dyncheck.Spec(Model, inputs={"packed": packs(), "h0": states()})
"""


def test_a_state_beside_a_plain_pack_is_not_guessed_at(dyncheck_run, pytester):
    # the GRU takes row 0 of an uncut h0 for a pack of one: sample 1 alone ran with sample 0's state
    pytester.makepyfile(plain_h0=_PLAIN_H0)
    run = dyncheck_run("--dyncheck", "plain_h0:spec", "--dyncheck-invariants=batch_invariance")
    assert run.outcomes() == {"dyncheck::plain_h0:spec::batch_invariance": "SKIPPED"}, run.text
    assert run.vacuous_reason("dyncheck::plain_h0:spec::batch_invariance").startswith(
        "h0 beside the PackedSequence has an axis of the batch's size, and no strategy names its batch axis"
    )


_MODELS = """
    import torch
    from torch import nn
    from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

    import dyncheck
    from dyncheck.strategies import packed_sequences

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.GRU(4, 6)
            self.decoder = nn.GRU(5, 6, batch_first=True)
            self.fc = nn.Linear(6, 3)

        def forward(self, src: PackedSequence, tgt: PackedSequence):
            out, _ = self.decoder(tgt, self.encoder(src)[1])
            return self.fc(pad_packed_sequence(out, batch_first=True)[0])

    class Attending(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(4, 8, batch_first=True)
            self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, packed: PackedSequence):
            padded, lengths = pad_packed_sequence(self.gru(packed)[0], batch_first=True)
            mask = torch.arange(padded.shape[1])[None, :] >= lengths[:, None]
            return self.attention(padded, padded, padded, key_padding_mask=mask)

    class RawSteps(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(4, 6)
            self.fc = nn.Linear(6, 3)

        def forward(self, packed: PackedSequence):
            return self.fc(self.gru(packed)[0].data)

    class StepPositions(RawSteps):
        def __init__(self):
            super().__init__()
            self.position = nn.Embedding(16, 4)

        def forward(self, packed: PackedSequence):
            # BUG: a step's position as if every sequence were as long as the longest
            position = torch.arange(packed.data.shape[0]) // int(packed.batch_sizes[0])
            out, _ = self.gru(packed._replace(data=packed.data + self.position(position)))
            return self.fc(out.data)

    class States(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)

        def forward(self, packed: PackedSequence):
            return self.lstm(packed)[1]

    many = dyncheck.Spec(RawSteps, dims={"batch": (17, 20), "time": (1, 2)})
    buggy = dyncheck.Spec(StepPositions, inputs={"packed": packed_sequences(feature_shape=(4,))})
"""


@pytest.mark.parametrize(("target", "outcome"), [
    ("Seq2Seq", "PASSED"),  # two packs: the decoder's steps are the target pack's
    ("Attending", "PASSED"),  # attention weights [batch, time, time]: both step axes cut
    ("RawSteps", "PASSED"),  # out.data in the pack's order: each sample's rows
    ("many", "PASSED"),  # 17 sequences of length 1 are packed in another order than the batch's
    ("States", "PASSED"),  # h_n [4, batch, 5] of a pack of 4 rows: its layers are not the pack's steps
    ("buggy", "FAILED"),  # out.data in the pack's order, wrong at different lengths
])
def test_outputs_of_packs_are_compared_sample_by_sample(dyncheck_run, pytester, target, outcome):
    pytester.makepyfile(pack_models=_MODELS)
    run = dyncheck_run("--dyncheck", f"pack_models:{target}", "--dyncheck-invariants=batch_invariance",
                       "--dyncheck-seed=1")
    assert run.outcomes() == {f"dyncheck::pack_models:{target}::batch_invariance": outcome}, run.text


# --------------------------------------------------------------------------- the pack as a value


def _pack() -> PackedSequence:
    return pack_sequence([torch.randn(3, 2), torch.randn(1, 2), torch.randn(2, 2)], enforce_sorted=False)


def test_moving_and_casting_a_pack_keeps_its_batch_sizes_on_the_cpu() -> None:
    from dyncheck.agreement import _move

    packed = _pack()
    moved = _move({"packed": packed}, "cpu", torch.float64)["packed"]
    assert isinstance(moved, PackedSequence) and moved.data.dtype == torch.float64
    assert moved.batch_sizes.dtype == torch.long and moved.batch_sizes.device.type == "cpu"
    assert torch.equal(moved.sorted_indices, packed.sorted_indices)
    assert _lengths(moved) == [3, 1, 2]


def test_a_pack_is_nudged_in_its_data_and_described_by_its_lengths() -> None:
    from dyncheck.rounding import nudged

    packed = _pack()
    moved = nudged((packed,), torch.Generator().manual_seed(0))[0]
    assert isinstance(moved, PackedSequence) and torch.equal(moved.batch_sizes, packed.batch_sizes)
    assert 0 < float((moved.data - packed.data).abs().max()) < 1e-6
    assert re.fullmatch(
        r"packed PackedSequence of 3 \(lengths \[3, 1, 2\], data float32\[6, 2\] max \|data\| [\d.]+\)",
        describe_value("packed", packed),
    )


def test_a_pack_is_recorded_in_a_baseline_and_read_back_as_one() -> None:
    from dyncheck.guard.baseline import _decode_value, _encode_value

    packed = _pack()
    back = _decode_value(_encode_value(packed, "packed"))
    assert isinstance(back, PackedSequence)
    for ours, theirs in zip(back, packed):
        assert torch.equal(ours, theirs)


def test_a_list_of_sequences_padded_back_is_compared_at_each_samples_own_steps(dyncheck_run, pytester):
    # a correct tagger over list[Tensor]: its padded-back tags were reported as a shape mismatch
    pytester.makepyfile(list_tagger="""
        import torch
        from torch import nn
        from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

        class Model(nn.Module):
            def __init__(self, features=4, hidden=6, tags=3):
                super().__init__()
                self.lstm = nn.LSTM(features, hidden, batch_first=True)
                self.tag = nn.Linear(hidden, tags)

            def forward(self, seqs: list[torch.Tensor]):
                padded, _ = pad_packed_sequence(self.lstm(pack_sequence(seqs, enforce_sorted=False))[0], batch_first=True)
                return self.tag(padded)
    """)
    run = dyncheck_run("--dyncheck", "list_tagger:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::list_tagger:Model::batch_invariance": "PASSED"}, run.text
    assert re.search(r"on \d+ examples? a sample's padded output was compared at its own steps only", run.text)


SORTED_PACKS = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence
from hypothesis import strategies as st

import dyncheck


class SortedOnly(nn.Module):
    # allennlp's AugmentedLstm: re-packs with enforce_sorted=True, so takes sorted packs only
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 6)

    def forward(self, inputs):
        x, lengths = pad_packed_sequence(inputs, batch_first=True)
        return pack_padded_sequence(torch.tanh(self.lin(x)), lengths, batch_first=True)


@st.composite
def sorted_packs(draw):
    size = draw(st.integers(1, 4))
    lengths = sorted(draw(st.lists(st.integers(1, 3), min_size=size, max_size=size)), reverse=True)
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    return pack_sequence([torch.randn(n, 8, generator=generator) for n in lengths], enforce_sorted=True)


spec = dyncheck.Spec(SortedOnly, inputs={"inputs": sorted_packs()})
"""


def test_a_sorted_pack_is_permuted_and_cut_as_a_sorted_pack(dyncheck_run, pytester):
    # The batch was re-packed unsorted, which a model that takes sorted packs only refuses:
    # "raised on an example the spec allows", beside the sorted example, which runs.
    pytester.makepyfile(sorted_packs=SORTED_PACKS)
    run = dyncheck_run("--dyncheck", "sorted_packs:spec", "--dyncheck-invariants=batch_invariance",
                       "--dyncheck-max-examples=30")
    assert run.outcomes() == {"dyncheck::sorted_packs:spec::batch_invariance": "PASSED"}, run.text
