"""Every correct reference model passes every invariant with no spec; every buggy
variant fails exactly the invariant its docstring names, and only that one."""

from __future__ import annotations

import importlib

import pytest

from reference_models import GOOD_TARGETS
from reference_models.buggy import BUGGY_TARGETS


#: The good models that hold an nn.RNN/LSTM/GRU (packed_rnn applies) and those whose forward
#: takes a padded batch with lengths or an attention mask (padding_invariance applies). Pinned, so a check that
#: stops applying to a model it is meant for fails here instead of skipping quietly.
RECURRENT = {
    "reference_models.rnn:DynamicRNN",
    "reference_models.tied_lm:TiedLanguageModel",
    "reference_models.bilstm:BiLSTMClassifier",
    "reference_models.attention_decoder:AttentionDecoder",
    "reference_models.packed_seq2seq:PackedSeq2Seq",
    "reference_models.time_major_gru:GRUTagger",
    "reference_models.builtin_layers:bidirectional_lstm",
    "reference_models.builtin_layers:time_major_gru",
    "reference_models.length_branch:LengthBranch",
    "reference_models.sequence_list:SequenceListClassifier",
    "reference_models.sequence_list:StackedSequenceTagger",
    "reference_models.dict_batch:DictBatchClassifier",
    "reference_models.caption_decoder:CaptionDecoder",
    "reference_models.crf_tagger:BiLSTMCRFTagger",
    "reference_models.hidden_state:HiddenStateLM",
    "reference_models.word_lm:WordLanguageModel",
    "reference_models.ctc_model:CTCModel",
    "reference_models.packed_input:PackedClassifier",
    "reference_models.packed_input:PackedTagger",
    "reference_models.greedy_decoder:GreedyDecoder",
    "reference_models.masked_crf:MaskedCRFTagger",
    "reference_models.flat_tagger:FlatTagger",
    "reference_models.learned_positions:LearnedPositionLM",
    "reference_models.last_item:LastItemGRU",
    "reference_models.mask_and_lengths:PackedMeanPool",
    "reference_models.categorical_table:ForecastEncoder",
    "reference_models.episode_lstm:EpisodeLSTMAgent",
    "reference_models.recommenders:SequentialRecommender",
}
PADDED = {
    "reference_models.rnn:DynamicRNN",
    "reference_models.bilstm:BiLSTMClassifier",
    "reference_models.packed_seq2seq:PackedSeq2Seq",
    "reference_models.time_major_gru:GRUTagger",
    # an inferred attention_mask says where the padding is
    "reference_models.hf_style:TinyCausalLM",
    "reference_models.hf_style:CROSS_ATTENTION_SPEC",
    "reference_models.ssm_cache:TinySSM",
    "reference_models.text_cnn:MaskedTextCNN",
    "reference_models.hf_patterns:PatternEncoder",
    # the lengths, or the mask, are an entry of a dict of inputs: batch["lengths"], batch["attention_mask"]
    "reference_models.dict_batch:DictBatchClassifier",
    "reference_models.dict_batch:DictMaskedClassifier",
    "reference_models.dict_batch:FeaturesPooler",
    # ... or under a name of its own the class declares: Spec(lengths="batch['n_valid']")
    "reference_models.dict_batch:DictFramesClassifier",
    # ... or of a dict inside the dict: batch["text"]["attention_mask"]
    "reference_models.dict_batch:NestedBatchClassifier",
    "reference_models.two_tower:TwoTower",
    "reference_models.local_attention:LocalAttentionLM",
    # ... or x-transformers' mask=None, True at tokens
    "reference_models.padding_mask:MaskedTokenEncoder",
    "reference_models.token_router:TopKTokenRouter",
    # ... or a mask a wrapper hands on through **kwargs (perceiver-pytorch's PreNorm)
    "reference_models.keyword_context:KeywordLatentEncoder",
    # ... or a required mask beside tags no layer takes (a BiLSTM-CRF tagger's, read by its name)
    "reference_models.masked_crf:MaskedCRFTagger",
    "reference_models.flat_tagger:FlatTagger",
    # ... or an optional lens=None beside float features
    "reference_models.padded_features:FeatureSequenceEncoder",
    # ... or nn.TransformerEncoder's src_key_padding_mask=None, True at padding
    "reference_models.key_padding:PaddedTransformerClassifier",
    "reference_models.builtin_layers:encoder_layer",
    "reference_models.layer_stack:LayerStack",
    # ... or lengths whose longest is always the padded length (the mask is built from lengths.max())
    "reference_models.length_mask:LengthMaskedConformer",
    # ... or an audio mask beside raw samples padded with the zeros the model declares
    "reference_models.zero_padded:ZeroPaddedAudioEncoder",
    # ... or lengths=None beside raw samples [batch, samples] into a Conv1d
    "reference_models.raw_audio:RawAudioEncoder",
    # ... or lengths the model takes only longest first (pack_padded_sequence, enforce_sorted=True)
    "reference_models.caption_decoder:CaptionDecoder",
    # ... or a required mask multiplied into the elements of padded sets
    "reference_models.deep_sets:DeepSets",
    # ... or lengths of frames a strided convolution subsamples, at least as long as its kernel
    "reference_models.ctc_model:CTCModel",
    # ... or lengths beside per-step features a GRU cell unrolled by hand reads (x[:, t])
    "reference_models.unrolled_cell:UnrolledGRU",
    # ... or lengths whose longest fills the batch, the steps past it read as right context
    "reference_models.right_context:RightContextEncoder",
    # ... or relative lengths, fractions of the padded length (SpeechBrain's wav_lens)
    "reference_models.relative_lengths:RelativeLengthsEncoder",
    "reference_models.float32_recurrence:Float32Recurrence",
    "reference_models.last_item:LastItemGRU",
    "reference_models.mask_and_lengths:PackedMeanPool",
    "reference_models.feature_chain:FeatureChain",
    # ... or an optional mask of a model built for at most 4 steps
    "reference_models.segment_positions:SegmentLM",
    "reference_models.recommenders:SequentialRecommender",
}


#: Good models with an optional padding argument a probe turned down: padding_invariance says why.
KEPT_DEFAULT = {
    # a mask of the keys' padding, probed over the query's steps: it raised
    "reference_models.builtin_layers:cross_attention": "forward's key_padding_mask is left at its default None",
}


#: Good models whose sequences come packed, or as a list: padding_invariance has no padding to compare.
PACKED = {
    "reference_models.sequence_list:SequenceListClassifier": "seqs is a list of sequences (sequence_lists)",
    "reference_models.sequence_list:StackedSequenceTagger": "seqs is a list of sequences (sequence_lists)",
    "reference_models.packed_input:PackedClassifier": "packed is a PackedSequence (packed_sequences)",
    "reference_models.packed_input:PackedTagger": "packed_tokens is a PackedSequence (packed_sequences)",
}


#: Good models that take episode-start flags beside a recurrent state: episode_reset applies.
EPISODIC = {"reference_models.episode_lstm:EpisodeLSTMAgent"}
#: ... and those whose state's name other inputs have too (memory), not inferred as a recurrent
#: layer's: episode_reset leaves them alone.
STATE_UNNAMED = {"reference_models.carried_memory:CarriedMemory": "forward takes reset but no recurrent state to reset"}


#: Good models that take one sequence, not a batch (inferred): batch_invariance has no batch to split.
UNBATCHED = {"reference_models.crf_tagger:BiLSTMCRFTagger"}


#: Good models with a kernel that refuses float64: dtype_agreement has no reference to compare with.
FLOAT64_REFUSED = {
    "reference_models.fused_mlp:FusedMLP": "the float64 reference cannot run: fused_bias_gelu refuses float64",
    "reference_models.grouped_experts:GroupedExpertsMoE": "the float64 reference cannot run: _grouped_mm refuses float64",
    "reference_models.float32_recurrence:Float32Recurrence":
        "the float64 reference cannot run: masked_recurrence refuses float64",
}


def expected_skips(target: str) -> dict[str, str]:
    """invariant -> the start of its skip reason for a good model on this machine."""
    import torch

    skips = {}
    if not torch.cuda.is_available():
        skips["device_agreement"] = "needs two devices to compare, this run has cpu"
    if target not in RECURRENT:
        skips["packed_rnn"] = "no nn.RNN/LSTM/GRU submodule"
    if target in PACKED:
        skips["padding_invariance"] = PACKED[target]
    elif target in KEPT_DEFAULT:
        skips["padding_invariance"] = KEPT_DEFAULT[target]
    elif target not in PADDED:
        skips["padding_invariance"] = "forward takes no lengths argument"
    if target in STATE_UNNAMED:
        skips["episode_reset"] = STATE_UNNAMED[target]
    elif target not in EPISODIC:
        skips["episode_reset"] = "forward takes no episode-start flags"
    if target in UNBATCHED:
        skips["batch_invariance"] = "forward takes one sequence, not a batch"
    if target in FLOAT64_REFUSED:
        skips["dtype_agreement"] = FLOAT64_REFUSED[target]
    # A check the model's own __dyncheck__ declares it skips (graph_conv: nodes coupled by edges).
    skips.update(getattr(_class(target), "__dyncheck__", {}).get("skip", {}))
    return skips


def test_make_check_expands_to_the_good_models_and_nothing_to_skip():
    # `python -m dyncheck reference_models` checks every model a module's __all__ lists: a
    # building block listed there (a layer whose forward needs a Spec) would open
    # `make check`'s output with a line saying it is skipped.
    from dyncheck.__main__ import _checkable, expand

    # Every model it checks is one this file pins the outcomes of, and the other way round.
    targets = expand("reference_models")
    assert sorted(targets) == sorted(GOOD_TARGETS)
    assert _checkable(targets) == targets


@pytest.mark.parametrize("target", GOOD_TARGETS)
def test_good_model_passes_everything_with_no_spec(dyncheck_run, target):
    from conftest import default_invariants

    run = dyncheck_run("--dyncheck", target, "--dyncheck-seed=3")
    assert run.ret == 0, run.text
    # A known bug of a founding model is declared in its __dyncheck__ xfail: it must fail.
    known = getattr(_class(target), "__dyncheck__", {}).get("xfail", {})
    skips = expected_skips(target)
    expected = {
        f"dyncheck::{target}::{name}": "XFAIL" if name in known else "SKIPPED" if name in skips else "PASSED"
        for name in default_invariants()
    }
    # A refactored twin declares the old model it must agree with: refactor_agreement runs too.
    if "against" in getattr(_class(target), "__dyncheck__", {}):
        expected[f"dyncheck::{target}::refactor_agreement"] = "PASSED"
    # A model declared causal: causality runs too.
    if getattr(_class(target), "__dyncheck__", {}).get("causal"):
        expected[f"dyncheck::{target}::causality"] = "PASSED"
    assert run.outcomes() == expected, run.text
    for name, reason in skips.items():
        assert run.skip_reason(f"dyncheck::{target}::{name}").startswith(reason)


@pytest.mark.parametrize(("target", "invariants"), sorted(BUGGY_TARGETS.items()))
@pytest.mark.usefixtures("verdicts_only")
def test_buggy_model_fails_its_invariants_and_only_those(dyncheck_run, target, invariants):
    run = dyncheck_run("--dyncheck", target, "--dyncheck-seed=3")
    outcomes = run.outcomes()
    if invariants == ("runs",):  # the model cannot run at all: every check reports the crash
        assert set(outcomes.values()) - {"SKIPPED"} == {"FAILED"}, run.text
        assert all(run.skip_reason(n) for n, o in outcomes.items() if o == "SKIPPED")
        assert "raised in forward" in run.failure("::determinism")
        return
    for invariant in invariants:
        assert outcomes.pop(f"dyncheck::{target}::{invariant}") == "FAILED", run.text
        text = run.failure(f"::{invariant}")
        assert f"{invariant} violated by {target}" in text or f"{invariant}: {target} raised" in text
    # The rest pass, or skip where they do not apply (no second device, no RNN, no lengths).
    assert set(outcomes.values()) <= {"PASSED", "SKIPPED"}, run.text
    assert "PASSED" in outcomes.values(), run.text


def _class(target: str):
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


@pytest.mark.parametrize("target", sorted(BUGGY_TARGETS))
def test_buggy_docstring_names_the_invariant(target):
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    assert module.__doc__.splitlines()[0] == f"Invariant: {', '.join(BUGGY_TARGETS[target])}"
