"""Models in the Hugging Face style: ``forward(input_ids=None, attention_mask=None, ...)``
returning a ``ModelOutput``-like mapping. Inferred with no spec (token ids from the
vocabulary, a 0/1 attention mask of their shape), checked field by field
(``output.logits``), and a coverage report that names the optional argument switching
cross-attention on. :mod:`reference_models.hf_style` is the model; no transformers needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

import dyncheck.strategies as dst
from dyncheck.examples import from_target, strategy_arguments
from dyncheck.spec import Spec
from dyncheck.target import resolve, resolve_spec
from reference_models.hf_style import CROSS_ATTENTION_SPEC, TinyCausalLM, TinyLMConfig

LM = "reference_models.hf_style:TinyCausalLM"
TOKENS = dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=39)
MASK_WHY = "the mask of input_ids: 1 for tokens, 0 for padding on the right, at least one token a row"


def test_a_hugging_face_style_model_needs_no_spec():
    target = resolve(LM)
    assert dict(target.spec.init) == {"config": TinyLMConfig()}
    assert target.inferred_init == {"config": "annotated TinyLMConfig, a dataclass whose fields all have defaults"}
    assert list(target.spec.inputs) == ["input_ids", "attention_mask"]
    assert repr(target.spec.inputs["input_ids"]) == repr(TOKENS)
    assert repr(target.spec.inputs["attention_mask"]) == repr(dst.attention_masks())
    assert target.inferred_inputs == {
        "input_ids": "first consumed by wte (Embedding(num_embeddings=40): integer tokens)",
        "attention_mask": MASK_WHY,
    }


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(from_target(resolve(LM)))
def test_drawn_token_ids_and_masks_fit_the_model(example):
    ids, mask = example.args["input_ids"], example.args["attention_mask"]
    assert ids.dtype == mask.dtype == torch.long and ids.shape == mask.shape
    assert 0 <= int(ids.min()) and int(ids.max()) < 40
    assert set(mask.unique().tolist()) <= {0, 1} and bool((mask.sum(1) >= 1).all())
    # right padding: every row is ones, then zeros
    assert torch.equal(mask, mask.cummin(dim=1).values)
    output = TinyCausalLM(TinyLMConfig())(**example.args)
    assert list(output.keys()) == ["logits", "past_key_values"]


def test_a_spec_giving_another_optional_input_still_gets_token_ids_and_mask():
    target = resolve_spec(CROSS_ATTENTION_SPEC)
    assert list(target.spec.inputs) == ["input_ids", "encoder_hidden_states", "attention_mask"]
    assert set(target.inferred_inputs) == {"input_ids", "attention_mask"}


def test_a_spec_giving_embeddings_instead_of_ids_is_left_alone():
    class ByEmbeds(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(10, 4)

        def forward(self, input_ids=None, inputs_embeds=None):
            return self.wte(input_ids) if inputs_embeds is None else inputs_embeds * 2

    target = resolve_spec(Spec(ByEmbeds, inputs={"inputs_embeds": dst.tensors(shape=("batch", "time", 4))}))
    assert list(target.spec.inputs) == ["inputs_embeds"]


@dataclass
class _Config:
    vocab_size: int = 30
    max_position_embeddings: int = 5


class _Indexed(nn.Module):
    """Reads its embedding by indexing the weight: no call the source flow sees."""

    def __init__(self, config: _Config, expose: bool = True):
        super().__init__()
        self.config = config
        self.expose = expose
        self.table = nn.Embedding(config.vocab_size, 4)
        self.head = nn.Linear(4, 2)

    def get_input_embeddings(self):
        return self.table if self.expose else None

    def forward(self, input_ids=None, attention_mask=None):
        hidden = self.table.weight[input_ids]
        return self.head(hidden * attention_mask[..., None])


def test_token_ids_no_layer_is_seen_to_consume_take_the_vocabulary_from_the_model():
    target = resolve_spec(Spec(_Indexed))
    assert repr(target.spec.inputs["input_ids"]) == repr(
        dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=29)
    )
    assert target.inferred_inputs["input_ids"] == (
        "token ids, by its name: integers in [0, 30) as get_input_embeddings() is Embedding(num_embeddings=30)"
    )
    from_config = resolve_spec(Spec(_Indexed, init={"expose": False}))
    assert from_config.inferred_inputs["input_ids"] == "token ids, by its name: integers in [0, 30) as config.vocab_size=30"
    # and the sequences stay within the position table
    assert dict(target.spec.dims)["time"] == (1, 5)
    assert target.inferred_dims == {"time": "config.max_position_embeddings=5: longer sequences have no position embedding"}


class _HashEmbeddings(nn.Module):
    """CANINE's character embeddings: each code point hashed into small tables, looked up
    by name (``getattr``), which the source flow does not follow."""

    def __init__(self, tables=2, buckets=16, width=4):
        super().__init__()
        self.tables = tables
        for i in range(tables):
            setattr(self, f"table_{i}", nn.Embedding(buckets, width))
        self.positions = nn.Embedding(64, width)

    def forward(self, input_ids=None):
        hidden = self.positions(torch.arange(input_ids.shape[1], device=input_ids.device))
        for i, prime in zip(range(self.tables), (31, 43)):
            table = getattr(self, f"table_{i}")
            hidden = hidden + table((input_ids + 1) * prime % table.num_embeddings)
        return hidden


class _Hashed(nn.Module):
    """A model that says no vocabulary: no get_input_embeddings(), no config.vocab_size."""

    def __init__(self):
        super().__init__()
        self.embeddings = _HashEmbeddings()
        self.head = nn.Linear(4, 2)

    def forward(self, input_ids=None, attention_mask=None):
        hidden = self.embeddings(input_ids=input_ids)
        return self.head((hidden * attention_mask[..., None]).sum(1))


def test_token_ids_of_a_model_that_says_no_vocabulary_stay_below_its_smallest_table():
    target = resolve_spec(Spec(_Hashed))
    assert repr(target.spec.inputs["input_ids"]) == repr(
        dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=15)
    )
    assert target.inferred_inputs["input_ids"] == (
        "token ids, by its name: integers in [0, 16) as embeddings.table_0 is Embedding(num_embeddings=16), the model's "
        "smallest table (it says no vocabulary)"
    )


class _Wrapped(nn.Module):
    """A user's wrapper around a Hugging Face-style model (as a LightningModule or a peft
    model holds one): it has no config of its own, and the model beside its vocabulary has a
    smaller table (BERT's two token types)."""

    def __init__(self):
        super().__init__()
        self.backbone = _Indexed(_Config())
        self.token_types = nn.Embedding(2, 4)

    def forward(self, input_ids=None, attention_mask=None):
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask) + self.token_types.weight[0, :2]


def test_token_ids_of_a_wrapper_take_the_vocabulary_of_the_model_it_holds():
    target = resolve_spec(Spec(_Wrapped))
    assert repr(target.spec.inputs["input_ids"]) == repr(
        dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=29)
    )
    assert target.inferred_inputs["input_ids"] == (
        "token ids, by its name: integers in [0, 30) as backbone's get_input_embeddings() is "
        "Embedding(num_embeddings=30)"
    )
    # and the sequences stay within the position table of the model it holds
    assert dict(target.spec.dims)["time"] == (1, 5)
    assert target.inferred_dims == {
        "time": "backbone.config.max_position_embeddings=5: longer sequences have no position embedding"
    }


class _TwoHeld(nn.Module):
    """A wrapper holding two models of their own vocabularies, the larger first, that routes
    its ids to one by name (which the source flow does not follow)."""

    def __init__(self):
        super().__init__()
        self.teacher = _Indexed(_Config(vocab_size=1000, max_position_embeddings=64))
        self.student = _Indexed(_Config())
        self.route = "student"

    def forward(self, input_ids=None, attention_mask=None):
        return getattr(self, self.route)(input_ids=input_ids, attention_mask=attention_mask)


def test_token_ids_of_a_wrapper_of_several_models_stay_below_the_smallest_vocabulary():
    target = resolve_spec(Spec(_TwoHeld))
    assert target.inferred_inputs["input_ids"] == (
        "token ids, by its name: integers in [0, 30) as student's get_input_embeddings() is "
        "Embedding(num_embeddings=30)"
    )
    # and the sequences stay within the shorter position table
    assert dict(target.spec.dims)["time"] == (1, 5)
    assert target.inferred_dims["time"].startswith("student.config.max_position_embeddings=5:")


def test_an_optional_argument_nothing_consumes_is_left_at_its_default():
    class Start(nn.Module):
        def __init__(self):
            super().__init__()
            self.start = nn.Parameter(torch.zeros(3))
            self.fc = nn.Linear(3, 3)

        def forward(self, context=None):
            h = self.fc(self.start)
            return h if context is None else h + context.mean()

    target = resolve_spec(Spec(Start))
    assert dict(target.spec.inputs) == {}


# --------------------------------------------------------------------------- the model itself


def test_the_reference_model_behaves_as_a_hugging_face_model_does():
    torch.manual_seed(0)
    model = TinyCausalLM(TinyLMConfig()).eval()
    assert model.lm_head.weight is model.wte.weight
    ids = torch.tensor([[5, 7, 9, 11], [3, 4, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    output = model(ids, attention_mask=mask)
    assert list(output.keys()) == ["logits", "past_key_values"] and output.loss is None
    assert output[0] is output.logits and output["logits"] is output.logits
    # padding changes nothing for the tokens before it
    alone = model(ids[1:, :2])
    torch.testing.assert_close(output.logits[1, :2], alone.logits[0])
    # the cache continues a sequence as the whole sequence would
    head = model(ids[:, :3], attention_mask=mask[:, :3])
    step = model(ids[:, 3:], attention_mask=mask, past_key_values=head.past_key_values)
    torch.testing.assert_close(step.logits[0, 0], output.logits[0, 3])
    # labels add a loss; return_dict=False gives the tuple of what is set
    labelled = model(ids, labels=ids)
    assert list(labelled.keys()) == ["loss", "logits", "past_key_values"] and labelled.loss.dim() == 0
    assert isinstance(model(ids, use_cache=False, return_dict=False), tuple)


# --------------------------------------------------------------------------- every check, field by field
# TinyCausalLM and CROSS_ATTENTION_SPEC are GOOD_TARGETS: every check passes on them
# (tests/test_reference_models.py), reading the output field by field.


INF_AT_THREE = """
from reference_models.hf_style import TinyCausalLM


class InfAtThree(TinyCausalLM):
    def forward(self, input_ids=None, attention_mask=None):
        output = super().forward(input_ids, attention_mask)
        output.logits = output.logits / (input_ids != 3)[..., None]
        return output
"""


def test_a_failure_names_the_output_field(dyncheck_run, pytester):
    pytester.makepyfile(infat=INF_AT_THREE)
    run = dyncheck_run("--dyncheck", "infat:InfAtThree", "--dyncheck-invariants=finite", "--dyncheck-seed=3")
    assert run.outcomes() == {"dyncheck::infat:InfAtThree::finite": "FAILED"}
    lines = run.failure("::finite").strip().splitlines()
    assert lines[:3] == [
        "finite violated by infat:InfAtThree",
        "",
        "The model produced NaN/inf outputs for an input the spec allows.",
    ]
    # the 40 logits of each token 3 are inf
    assert re.fullmatch(r"  output\.logits: (\d+) / \d+ non-finite \(\1 inf\), first at index \(\d+, \d+, 0\)", lines[3])
    assert re.fullmatch(
        r"  first NaN/inf made by Tensor\.div at \S*infat\.py:\d+: `output\.logits = output\.logits / "
        r"\(input_ids != 3\)\[\.\.\., None\]`, from finite inputs \[\d+, \d+, \d+\], \[\d+, \d+, 1\]( = \S+)?",
        lines[4],
    ), lines[4]
    assert re.fullmatch(
        r"  example:  input_ids int64\[\d+, \d+\].*, attention_mask int64\[\d+, \d+\].*, seed=\d+", lines[5]
    )


# --------------------------------------------------------------------------- optional inputs that switch modules on


def _never_ran(model: nn.Module, prefix: str) -> set[str]:
    return {name for name, _ in model.named_modules() if name and prefix not in name}


def test_the_optional_argument_handed_to_modules_that_never_ran_is_named_with_its_spec():
    from dyncheck.infer import optional_inputs, optional_inputs_hint
    from reference_models.hf_style import tiny_decoder_with_cross_attention

    model = tiny_decoder_with_cross_attention()
    spec = resolve_spec(Spec(tiny_decoder_with_cross_attention)).spec
    ran = _never_ran(model, "cross")
    (found,) = optional_inputs(model, spec.inputs, ran)
    # labels and past_key_values are left at None too, but never reach cross-attention itself
    assert (found.name, found.reaches) == ("encoder_hidden_states", ("h.0.crossattention",))
    assert optional_inputs_hint(model, spec, ran) == [
        "encoder_hidden_states was left at its default None; it is handed to h.0.crossattention, which never ran",
        "give it values: dyncheck.Spec(tiny_decoder_with_cross_attention, inputs={'encoder_hidden_states': "
        "dyncheck.strategies.tensors(shape=('batch', 'source', 16))})",
    ]
    # given, it is not named again (nothing left reaches them: every argument left is listed)
    given = optional_inputs(model, resolve_spec(CROSS_ATTENTION_SPEC).spec.inputs, ran)
    assert [(o.name, o.reaches) for o in given] == [
        ("labels", ()), ("past_key_values", ()), ("use_cache", ()), ("return_dict", ())
    ]


class _SideBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.side = nn.Linear(4, 4)

    def forward(self, x, extra=None):
        h = self.fc(x)
        if extra is not None:  # switches side on without handing extra to it
            h = h + self.side(h)
        return h


def test_an_optional_argument_not_seen_to_reach_them_is_still_named():
    from dyncheck.infer import optional_inputs_hint

    spec = resolve_spec(Spec(_SideBranch)).spec
    assert optional_inputs_hint(_SideBranch(), spec, {"fc"}) == [
        "forward's optional argument extra was left at its default None; if it switches the dead modules on, "
        "give it values, e.g. dyncheck.Spec(_SideBranch, inputs={'extra': dyncheck.strategies.tensors(shape=<its shape>)})"
    ]



class _GlobalMask(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.side = nn.Linear(4, 4)

    def forward(self, x, global_attention_mask=None):
        h = self.fc(x)
        if global_attention_mask is not None:  # Longformer's global attention
            h = h + self.side(h)
        return h


def test_an_optional_mask_is_suggested_as_a_mask_over_the_tokens():
    from dyncheck.infer import optional_inputs_hint

    spec = resolve_spec(Spec(_GlobalMask)).spec
    [line] = optional_inputs_hint(_GlobalMask(), spec, {"fc"})
    assert line.endswith(
        "inputs={'global_attention_mask': dyncheck.strategies.tensors(shape=('batch', 'time'), dtype=torch.long, "
        "max_value=1)})"
    ), line


CROSS = """
import dyncheck
from reference_models.hf_style import tiny_decoder_with_cross_attention

spec = dyncheck.Spec(tiny_decoder_with_cross_attention)
"""


def test_coverage_of_dead_cross_attention_says_which_argument_to_give(dyncheck_run, pytester):
    pytester.makepyfile(cross=CROSS)
    run = dyncheck_run(
        "--dyncheck", "cross:spec", "--dyncheck-invariants=coverage", "--dyncheck-seed=3", "--dyncheck-max-examples=5"
    )
    assert run.outcomes() == {"dyncheck::cross:spec::coverage": "FAILED"}
    lines = run.failure("::coverage").strip().splitlines()
    assert lines[2].startswith("2,240 of 9,664 parameters are dead: no example ran their module or reached them")
    hint = lines.index(
        "  encoder_hidden_states was left at its default None; it is handed to h.0.crossattention, which never ran"
    )
    assert lines[hint + 1] == (
        "  give it values: dyncheck.Spec(tiny_decoder_with_cross_attention, inputs={'encoder_hidden_states': "
        "dyncheck.strategies.tensors(shape=('batch', 'source', 16))})"
    )


class _Attend(nn.Module):
    def __init__(self):
        super().__init__()
        self.k = nn.Linear(6, 4)

    def forward(self, h, memory, mask):
        scores = (h @ self.k(memory).T).masked_fill(mask, -1e4)
        return scores.softmax(-1) @ self.k(memory)


class _WithMemory(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.cross = _Attend()

    def forward(self, x, memory=None, memory_mask=None):
        h = self.fc(x)
        if memory is not None:
            h = h + self.cross(h, memory, memory_mask)
        return h


def test_the_spec_line_gives_the_arguments_a_strategy_was_found_for():
    from dyncheck.infer import optional_inputs_hint

    spec = resolve_spec(Spec(_WithMemory)).spec
    assert optional_inputs_hint(_WithMemory(), spec, {"fc"}) == [
        "memory, memory_mask were left at their default None; they are handed to cross, which never ran",
        "give memory values: dyncheck.Spec(_WithMemory, inputs={'memory': dyncheck.strategies.tensors(shape=('batch', 6))})",
    ]


SEQ2SEQ = '''
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Config:
    vocab_size: int = 20
    hidden: int = 8


class TinySeq2Seq(nn.Module):
    """An encoder-decoder written as Hugging Face's are: the decoder's tokens are optional in
    the signature, and forward raises without them (WhisperModel, T5Model)."""

    def __init__(self, config=None):
        super().__init__()
        self.config = config or Config()
        self.shared = nn.Embedding(self.config.vocab_size, self.config.hidden)
        self.encoder = nn.GRU(self.config.hidden, self.config.hidden, batch_first=True)
        self.decoder = nn.GRU(self.config.hidden, self.config.hidden, batch_first=True)

    def get_input_embeddings(self):
        return self.shared

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None):
        if decoder_input_ids is None:
            raise ValueError("You have to specify either decoder_input_ids or decoder_inputs_embeds")
        _, memory = self.encoder(self.shared(input_ids))
        return self.decoder(self.shared(decoder_input_ids), memory)[0]
'''


def test_an_encoder_decoder_gets_decoder_tokens_of_their_own_length(dyncheck_run, pytester):
    pytester.makepyfile(seq2seq=SEQ2SEQ)
    pytester.syspathinsert()
    from seq2seq import TinySeq2Seq

    target = resolve_spec(Spec(TinySeq2Seq))
    shapes = {name: strategy_arguments(s).get("shape") for name, s in target.spec.inputs.items()}
    assert shapes["input_ids"] == ("batch", "time") and shapes["decoder_input_ids"] == ("batch", "target"), shapes
    run = dyncheck_run("--dyncheck", "seq2seq:TinySeq2Seq", "--dyncheck-invariants=determinism,batch_invariance",
                       "--dyncheck-max-examples=10")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text
