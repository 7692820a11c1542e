"""Plain tests of the reference models: no dyncheck, only torch and pytest.

They pin what the models are meant to do (paths taken, ties, seeded bugs) so that a
dyncheck failure on them points at dyncheck, not at the models.
"""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
from typing import Any

import pytest
import torch

from reference_models import GOOD_TARGETS
from reference_models.buggy import BUGGY_TARGETS
from reference_models.buggy.call_counter import Model as CallCounter
from reference_models.buggy.nan_gradient import Model as NanGradient
from reference_models.buggy.nan_output import Model as NanOutput
from reference_models.buggy.shared_original import SharedNet as SharedOriginal
from reference_models.buggy.unseeded_generator import Model as UnseededGenerator
from reference_models.classifier import DynamicClassifier
from reference_models.gated import DynamicNet as GatedNet
from reference_models.paddle_branch import MyModel
from reference_models.random_depth import DynamicNet as RandomDepthNet
from reference_models.rnn import DynamicRNN
from reference_models.shared import SharedNet


def _resolve(target: str) -> type:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _count_calls(module: torch.nn.Module) -> list[int]:
    """A one-element list counting the forward calls of ``module`` from now on."""
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


# --- the package -------------------------------------------------------------------


def test_targets_resolve_to_classes_or_factories() -> None:
    for target in (*GOOD_TARGETS, *BUGGY_TARGETS):
        found = _resolve(target)
        if hasattr(found, "model"):  # a dyncheck.Spec (duck-typed: this file imports no dyncheck)
            found = found.model
        if isinstance(found, type):
            assert issubclass(found, torch.nn.Module), target
        else:  # a factory (closure_tie_factory:make_model, torch's own layers) returns a module
            assert isinstance(found(), torch.nn.Module), target


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, reference_models, reference_models.buggy; "
        "sys.exit('torch' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("target", sorted(BUGGY_TARGETS))
def test_buggy_docstring_names_its_invariant(target: str) -> None:
    module = importlib.import_module(target.partition(":")[0])
    first, blank, *rest = module.__doc__.splitlines()
    assert first == f"Invariant: {', '.join(BUGGY_TARGETS[target])}"
    assert blank == "" and rest


# --- every good model runs forward and backward --------------------------------------


def _gated() -> tuple[torch.nn.Module, tuple]:
    return GatedNet(10, 5, 2), (torch.randn(3, 10), torch.rand(1))


def _random_depth() -> tuple[torch.nn.Module, tuple]:
    return RandomDepthNet(10, 5, 2), (torch.randn(3, 10),)


def _shared() -> tuple[torch.nn.Module, tuple]:
    return SharedNet(6, 6, 6), (torch.randn(3, 6),)


def _classifier() -> tuple[torch.nn.Module, tuple]:
    return DynamicClassifier(), (torch.randn(3, 100),)


def _rnn() -> tuple[torch.nn.Module, tuple]:
    return DynamicRNN(4, 6, 2), (torch.randn(3, 5, 4), torch.tensor([2, 5, 1]))


def _paddle() -> tuple[torch.nn.Module, tuple]:
    return MyModel(8, 16), (torch.randn(3, 8),)


def _tied_lm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.tied_lm import TiedLanguageModel

    model = TiedLanguageModel(11, 6)
    assert model.decoder.weight is model.encoder.weight
    return model, (torch.randint(0, 11, (3, 5)),)


def _routing() -> tuple[torch.nn.Module, tuple]:
    from reference_models.routing import TopOneMoE

    return TopOneMoE(8, 6, 2), (torch.randn(3, 8),)


def _bilstm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.bilstm import BiLSTMClassifier

    return BiLSTMClassifier(4, 6, 2), (torch.randn(3, 5, 4), torch.tensor([2, 5, 1]))


def _time_major_gru() -> tuple[torch.nn.Module, tuple]:
    from reference_models.time_major_gru import GRUTagger

    return GRUTagger(4, 6, 2), (torch.randn(5, 3, 4), torch.tensor([2, 5, 1]))


def _top_two_moe() -> tuple[torch.nn.Module, tuple]:
    from reference_models.top_two_moe import TopTwoMoE

    return TopTwoMoE(8, 6, 2), (torch.randn(3, 8),)


def _norm_encoder() -> tuple[torch.nn.Module, tuple]:
    from reference_models.norm_encoder import NormEncoder

    return NormEncoder(), (torch.randn(3, 5, 8),)


def _softmax_classifier() -> tuple[torch.nn.Module, tuple]:
    from reference_models.softmax_classifier import SoftmaxClassifier

    return SoftmaxClassifier(), (torch.randn(3, 10),)


def _fused_mlp() -> tuple[torch.nn.Module, tuple]:
    from reference_models.fused_mlp import FusedMLP

    return FusedMLP(), (torch.randn(3, 10),)


def _grouped_experts() -> tuple[torch.nn.Module, tuple]:
    from reference_models.grouped_experts import GroupedExpertsMoE

    return GroupedExpertsMoE(), (torch.randn(3, 8),)


def _two_views() -> tuple[torch.nn.Module, tuple]:
    from reference_models.two_views import TwoViewContrast

    return TwoViewContrast(), ([torch.randn(3, 6), torch.randn(3, 6), torch.randn(3, 6)],)


def _module_network() -> tuple[torch.nn.Module, tuple]:
    from reference_models.module_network import ModuleNetwork

    return ModuleNetwork(), (torch.randn(3, 8), torch.tensor([[1, 2], [2, 0], [1, 1]]))


class _FirstTask(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, 1)


def _task_heads() -> tuple[torch.nn.Module, tuple]:
    from reference_models.task_heads import TaskHeads

    return _FirstTask(TaskHeads()), (torch.randn(3, 8),)


def _right_context() -> tuple[torch.nn.Module, tuple]:
    from reference_models.right_context import RightContextEncoder

    return _FirstOutputSummed(RightContextEncoder()), (torch.randn(3, 5, 6), torch.tensor([5, 2, 4]))


class _FirstOutputSummed(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(*args).sum(1)


def _noisy_hidden() -> tuple[torch.nn.Module, tuple]:
    from reference_models.noisy_hidden import NoisyHidden

    return NoisyHidden(), (torch.randn(3, 10),)


def _causal_attention() -> tuple[torch.nn.Module, tuple]:
    from reference_models.causal_attention import CausalSelfAttention

    return CausalSelfAttention(), (torch.randn(3, 5, 8),)


def _causal_tcn() -> tuple[torch.nn.Module, tuple]:
    from reference_models.causal_tcn import CausalTCN

    return CausalTCN(), (torch.randn(3, 7, 3),)


def _time_features() -> tuple[torch.nn.Module, tuple]:
    from reference_models.time_features import TimeFeatureForecaster

    return TimeFeatureForecaster(), (torch.randn(3, 6, 3), torch.randn(3, 6, 4), torch.randn(3, 4, 3), torch.randn(3, 4, 4))


def _greedy_decoder() -> tuple[torch.nn.Module, tuple]:
    from reference_models.greedy_decoder import GreedyDecoder

    return _SecondOutput(GreedyDecoder()), (torch.randint(0, 4, (3, 5)),)  # the scores


def _beam_search() -> tuple[torch.nn.Module, tuple]:
    from reference_models.beam_search import BeamSearchDecoder

    return _SecondOutput(BeamSearchDecoder()), (torch.randn(3, 10),)  # the best hypotheses' scores


def _unrolled_cell() -> tuple[torch.nn.Module, tuple]:
    from reference_models.unrolled_cell import UnrolledGRU

    return _FirstOfTwo(UnrolledGRU()), (torch.randn(3, 5, 6), torch.tensor([5, 2, 3]))


def _loop_moe() -> tuple[torch.nn.Module, tuple]:
    from reference_models.loop_moe import LoopMoE

    return LoopMoE(8, 6, 2), (torch.randn(3, 8),)


def _early_exit() -> tuple[torch.nn.Module, tuple]:
    from reference_models.early_exit import EarlyExitNet

    return EarlyExitNet(), (torch.randn(3, 8),)


class _FirstOutput(torch.nn.Module):
    """Torch's recurrent layers return (output, state): the output, batch first."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.layer(x)[0]
        return output if self.layer.batch_first else output.transpose(0, 1)


def _builtin_layers() -> tuple[torch.nn.Module, tuple]:
    from reference_models.builtin_layers import bidirectional_lstm, time_major_gru

    lstm = bidirectional_lstm()
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bidirectional) == (4, 8, 2, True)
    assert time_major_gru()(torch.randn(5, 3, 5))[0].shape == (5, 3, 6)
    return _FirstOutput(lstm), (torch.randn(3, 5, 4),)


class _Logits(torch.nn.Module):
    """A Hugging Face-style model's logits, for the shared forward/backward test."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask=attention_mask).logits


class _Hidden(torch.nn.Module):
    """A model's last_hidden_state, for the shared forward/backward test."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask=attention_mask).last_hidden_state


def _hf_style() -> tuple[torch.nn.Module, tuple]:
    from reference_models.hf_style import TinyCausalLM, TinyLMConfig

    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    return _Logits(TinyCausalLM(TinyLMConfig())), (torch.randint(0, 40, (3, 5)), mask)


def _attention() -> tuple[torch.nn.Module, tuple]:
    from reference_models.attention import Attention

    return Attention(), (torch.randn(3, 5, 8), torch.tensor([0.7]))


def _renamed_gated() -> tuple[torch.nn.Module, tuple]:
    from reference_models.renamed_gated import GatedNet

    return GatedNet(8, 6, 4), (torch.randn(3, 8), torch.tensor([0.7]))


def _fused_attention() -> tuple[torch.nn.Module, tuple]:
    from reference_models.fused_attention import FusedAttention

    return FusedAttention(), (torch.randn(3, 5, 8), torch.tensor([0.7]))


def _batched_moe() -> tuple[torch.nn.Module, tuple]:
    from reference_models.batched_moe import BatchedTopOneMoE

    return BatchedTopOneMoE(8, 6, 2), (torch.randn(3, 8),)


def _lenet() -> tuple[torch.nn.Module, tuple]:
    from reference_models.lenet import LeNet

    return LeNet(), (torch.randn(3, 1, 32, 32),)


def _text_cnn() -> tuple[torch.nn.Module, tuple]:
    from reference_models.text_cnn import TextCNN

    return TextCNN(), (torch.randint(0, 40, (3, 6)),)


def _checkpointed() -> tuple[torch.nn.Module, tuple]:
    from reference_models.checkpointed import CheckpointedMLP

    return CheckpointedMLP(), (torch.randn(3, 8),)


def _hf_patterns() -> tuple[torch.nn.Module, tuple]:
    from reference_models.hf_patterns import PatternEncoder

    return PatternEncoder(), (torch.randint(0, 40, (3, 5)), torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] + [0] * 4]))


def _length_branch() -> tuple[torch.nn.Module, tuple]:
    from reference_models.length_branch import LengthBranch

    return LengthBranch(), (torch.randn(3, 5, 4),)


def _sequence_list() -> tuple[torch.nn.Module, tuple]:
    from reference_models.sequence_list import SequenceListClassifier

    return SequenceListClassifier(), ([torch.randn(n, 3) for n in (2, 5, 1)],)


def _running_norm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.running_norm import RunningNormClassifier

    return RunningNormClassifier(), (torch.randn(3, 6),)


def _timestep_embedding() -> tuple[torch.nn.Module, tuple]:
    from reference_models.timestep_embedding import GuidedDenoiser

    return GuidedDenoiser(), (torch.randn(3, 6), torch.randint(0, 1000, (3,)), torch.tensor([0, 3, 1]))


def _ema_codebook() -> tuple[torch.nn.Module, tuple]:
    from reference_models.ema_codebook import EMAQuantizedAutoencoder

    model = EMAQuantizedAutoencoder()
    return _Reconstruction(model), (torch.randn(3, 10),)


class _Reconstruction(torch.nn.Module):
    """The reconstruction of a model that returns a dict."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["reconstruction"]


def _film() -> tuple[torch.nn.Module, tuple]:
    from reference_models.film import FiLMConditioned

    return FiLMConditioned(), (torch.randn(3, 8), torch.randn(3, 4))


def _elastic_width() -> tuple[torch.nn.Module, tuple]:
    from reference_models.elastic_width import ElasticMLP

    return ElasticMLP(), (torch.randn(3, 8), 5)


class _BatchFirstMembranes(torch.nn.Module):
    """The membranes of a time-major spiking net, batch first."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.model(data)[1].transpose(0, 1)


def _spiking() -> tuple[torch.nn.Module, tuple]:
    from reference_models.spiking import LeakySNN

    return _BatchFirstMembranes(LeakySNN()), (torch.randn(5, 3, 8),)


def _multi_scale() -> tuple[torch.nn.Module, tuple]:
    from reference_models.multi_scale import MultiScaleClassifier

    return MultiScaleClassifier(), (torch.randn(3, 3, 8, 8), 1)


def _adapter_mixture() -> tuple[torch.nn.Module, tuple]:
    from reference_models.adapter_mixture import AdapterMixture

    return AdapterMixture(), (torch.randn(3, 12), torch.tensor([0, 2, 1]))


class _Readout(torch.nn.Module):
    """The first of what a model returns (its readout, beside the state it carries)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any) -> torch.Tensor:
        return self.model(*args)[0]


def _carried_memory() -> tuple[torch.nn.Module, tuple]:
    from reference_models.carried_memory import CarriedMemory

    return _Readout(CarriedMemory()), (torch.randn(3, 8), torch.randn(3, 16), False)


def _smoothed_loss() -> tuple[torch.nn.Module, tuple]:
    from reference_models.smoothed_loss import LabelSmoothedClassifier

    return _Readout(LabelSmoothedClassifier()), (torch.randn(3, 12), torch.tensor([0, 4, 2]))


def _topk_attention() -> tuple[torch.nn.Module, tuple]:
    from reference_models.topk_attention import TopKAttention

    return TopKAttention(), (torch.randn(3, 5, 8),)


def _flow_distribution() -> tuple[torch.nn.Module, tuple]:
    from reference_models.flow_distribution import ConditionalFlow

    return _LogProb(ConditionalFlow()), (torch.randn(3, 3),)


class _LogProb(torch.nn.Module):
    """The log-likelihood of a sample under the distribution a model returns."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        distribution = self.model(context)
        return distribution.log_prob(torch.zeros(len(context), 4))[:, None]


def _dict_batch() -> tuple[torch.nn.Module, tuple]:
    from reference_models.dict_batch import DictBatchClassifier

    return DictBatchClassifier(), ({"tokens": torch.randint(0, 30, (3, 5)), "lengths": torch.tensor([5, 2, 3])},)


def _graph_conv() -> tuple[torch.nn.Module, tuple]:
    from reference_models.graph_conv import GraphConv

    return GraphConv(), (torch.randn(3, 5), torch.tensor([[0, 1, 2, 1], [1, 2, 0, 0]]))


def _ssm_cache() -> tuple[torch.nn.Module, tuple]:
    from reference_models.ssm_cache import TinySSM

    return _Hidden(TinySSM()), (torch.randint(0, 40, (3, 5)), torch.tensor([[1] * 5, [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]))


def _deep_norm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.deep_norm import DeepNormNet

    return DeepNormNet(), (torch.randn(3, 3, 4, 4),)


def _patch_dropout() -> tuple[torch.nn.Module, tuple]:
    from reference_models.patch_dropout import PatchDropViT

    return PatchDropViT(), (torch.randn(3, 3, 8, 8),)


def _einops_vit() -> tuple[torch.nn.Module, tuple]:
    from reference_models.einops_vit import EinopsViT

    return EinopsViT(), (torch.randn(3, 3, 8, 12),)


def _liquid_rnn() -> tuple[torch.nn.Module, tuple]:
    from reference_models.liquid_rnn import LiquidRNN

    return _FirstOutput(LiquidRNN()), (torch.randn(3, 5, 4),)  # (output, state), as a recurrent layer's


def _squeeze_excite() -> tuple[torch.nn.Module, tuple]:
    from reference_models.squeeze_excite import SqueezeExciteNet

    return SqueezeExciteNet(), (torch.randn(3, 4),)


def _depthwise_norm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.depthwise_norm import DepthwiseNormNet

    return DepthwiseNormNet(), (torch.randn(3, 4, 4, 4),)


def _pre_norm_stack() -> tuple[torch.nn.Module, tuple]:
    from reference_models.pre_norm_stack import PreNormStack

    return PreNormStack(), (torch.randn(3, 3, 8, 8),)


def _drop_path() -> tuple[torch.nn.Module, tuple]:
    from reference_models.drop_path import DropPathNet

    return DropPathNet(), (torch.randn(3, 4),)


class _ImagesScored(torch.nn.Module):
    """The two-tower model's logits_per_image, for the shared forward/backward test."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, pixel_values, attention_mask):
        return self.model(input_ids, pixel_values, attention_mask)["logits_per_image"]


def _two_tower() -> tuple[torch.nn.Module, tuple]:
    from reference_models.two_tower import TwoTower

    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    return _ImagesScored(TwoTower()), (torch.randint(0, 30, (3, 4)), torch.randn(3, 3, 8, 8), mask)


def _local_attention() -> tuple[torch.nn.Module, tuple]:
    from reference_models.local_attention import LocalAttentionLM

    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    return LocalAttentionLM(), (torch.randint(0, 32, (3, 4)), mask)


def _recurrent_lm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.recurrent_lm import RecurrentLM

    return RecurrentLM(), (torch.randint(0, 32, (3, 4)),)


def _landmark_attention() -> tuple[torch.nn.Module, tuple]:
    from reference_models.landmark_attention import LandmarkAttention

    return LandmarkAttention(), (torch.randint(0, 32, (3, 16)),)


def _decision_policy() -> tuple[torch.nn.Module, tuple]:
    from reference_models.decision_policy import DecisionPolicy

    states, actions, returns = torch.randn(3, 5, 4), torch.randn(3, 5, 2), torch.randn(3, 5, 1)
    return DecisionPolicy(), (states, actions, None, returns, torch.randint(0, 16, (3, 5)))


def _einsum_moe() -> tuple[torch.nn.Module, tuple]:
    from reference_models.einsum_moe import EinsumMoE

    return EinsumMoE(), (torch.randn(3, 5, 8),)


def _padding_mask() -> tuple[torch.nn.Module, tuple]:
    from reference_models.padding_mask import MaskedTokenEncoder

    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    return MaskedTokenEncoder(), (torch.randint(0, 32, (3, 4)), mask)


def _adaptive_ode() -> tuple[torch.nn.Module, tuple]:
    from reference_models.adaptive_ode import AdaptiveODEClassifier

    model = AdaptiveODEClassifier().eval()
    x = torch.randn(3, 8)
    out = model(x)
    assert out.shape == (3, 4)
    # a sample alone takes other steps than in the batch: its result moves within the
    # solver's tolerance, not by more
    torch.testing.assert_close(model(x[:1]), out[:1], rtol=1e-2, atol=1e-3)
    return model.train(), (x,)


def _depth_router() -> tuple[torch.nn.Module, tuple]:
    from reference_models.depth_router import MixtureOfDepths

    model = MixtureOfDepths()
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]])
    out = model(tokens)
    assert out.shape == (3, 4, 50)
    # each sequence routes its own tokens: a row alone gives the row's outputs
    torch.testing.assert_close(model(tokens[1:2]), out[1:2])
    return model, (tokens,)


def _token_router() -> tuple[torch.nn.Module, tuple]:
    from reference_models.token_router import TopKTokenRouter

    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    return TopKTokenRouter(), (torch.randn(3, 4, 8), mask)


def _staged_ema() -> tuple[torch.nn.Module, tuple]:
    from reference_models.staged_ema import StagedEMA

    return StagedEMA(), (torch.randn(3, 8),)


def _latent_reader() -> tuple[torch.nn.Module, tuple]:
    from reference_models.latent_reader import LatentReader

    return LatentReader(), (torch.randn(3, 5, 6),)


def _keyword_context() -> tuple[torch.nn.Module, tuple]:
    from reference_models.keyword_context import KeywordLatentEncoder

    return KeywordLatentEncoder(), (torch.randn(3, 5, 6), torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4]))


def _masked_crf() -> tuple[torch.nn.Module, tuple]:
    from reference_models.masked_crf import MaskedCRFTagger

    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    return MaskedCRFTagger(), (torch.randint(0, 20, (3, 5)), torch.randint(0, 4, (3, 5)), mask)


def _memory_tokens() -> tuple[torch.nn.Module, tuple]:
    from reference_models.memory_tokens import MemoryTokenEncoder

    return MemoryTokenEncoder(), (torch.randn(3, 5, 8),)


def _named_bound() -> tuple[torch.nn.Module, tuple]:
    from reference_models.named_bound import NamedBoundRNN

    return NamedBoundRNN(), (torch.randn(5, 3, 8),)


def _feedback_memory() -> tuple[torch.nn.Module, tuple]:
    from reference_models.feedback_memory import FeedbackMemory

    return FeedbackMemory(), (torch.randn(5, 3, 16),)


def _hidden_membrane() -> tuple[torch.nn.Module, tuple]:
    from reference_models.hidden_membrane import HiddenMembraneSNN

    return HiddenMembraneSNN(), (torch.randn(5, 3, 8),)


def _bag_concat() -> tuple[torch.nn.Module, tuple]:
    from reference_models.bag_concat import BagConcat

    return BagConcat(), (torch.randn(3, 5, 6),)


def _optional_gate() -> tuple[torch.nn.Module, tuple]:
    from reference_models.optional_gate import OptionalGateNet

    return OptionalGateNet(), (torch.randn(3, 6), 0.7)


def _flat_tagger() -> tuple[torch.nn.Module, tuple]:
    from reference_models.flat_tagger import FlatTagger

    return FlatTagger(), (torch.randn(3, 5, 8), torch.tensor([1, 1, 1]))  # [sum(lengths), tags]


def _learned_positions() -> tuple[torch.nn.Module, tuple]:
    from reference_models.learned_positions import LearnedPositionLM

    return LearnedPositionLM(10, 8, 6), (torch.randint(0, 10, (3, 5)),)


def _projected_recurrence() -> tuple[torch.nn.Module, tuple]:
    from reference_models.projected_recurrence import ProjectedRecurrence

    return ProjectedRecurrence(), (torch.randn(3, 2, 8),)  # [time, batch, features]


def _float32_recurrence() -> tuple[torch.nn.Module, tuple]:
    from reference_models.float32_recurrence import Float32Recurrence

    return Float32Recurrence(), (torch.randn(3, 5, 8), torch.tensor([5, 2, 3]))


def _per_head_weights() -> tuple[torch.nn.Module, tuple]:
    from reference_models.per_head_weights import PerHeadWeights

    return PerHeadWeights(), (torch.randn(3, 8),)


def _picked_columns() -> tuple[torch.nn.Module, tuple]:
    from reference_models.picked_columns import PickedColumnsTabular

    return PickedColumnsTabular(), (torch.tensor([[5.0, 3.0, 0.4], [0.0, 1.0, -2.0], [2.0, 0.0, 7.5]]),)


def _parallel_scan() -> tuple[torch.nn.Module, tuple]:
    from reference_models.parallel_scan import ParallelScanGRU

    return ParallelScanGRU(), (torch.randn(3, 5, 8),)


def _last_item() -> tuple[torch.nn.Module, tuple]:
    from reference_models.last_item import LastItemGRU

    return LastItemGRU(), (torch.tensor([[3, 4, 5, 0], [7, 0, 0, 0], [1, 2, 0, 0]]), torch.tensor([3, 1, 2]))


def _mask_and_lengths() -> tuple[torch.nn.Module, tuple]:
    from reference_models.mask_and_lengths import PackedMeanPool

    lengths = torch.tensor([3, 1, 2])
    mask = (torch.arange(4)[None, :] < lengths[:, None]).long()
    return PackedMeanPool(), (torch.tensor([[3, 4, 5, 0], [7, 0, 0, 0], [1, 2, 0, 0]]), mask, lengths)


def _svd_adapter() -> tuple[torch.nn.Module, tuple]:
    from reference_models.svd_adapter import SVDAdapterLinear

    return SVDAdapterLinear(), (torch.randn(3, 8),)


class _SentenceEmbedding(torch.nn.Module):
    """A feature chain's sentence embedding, from its dict of features."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]


def _feature_chain() -> tuple[torch.nn.Module, tuple]:
    from reference_models.feature_chain import FeatureChain

    ids = torch.tensor([[3, 4, 5, 0], [7, 0, 0, 0], [1, 2, 0, 0]])
    return _SentenceEmbedding(FeatureChain()), (ids, (ids != 0).long())


def _categorical_table() -> tuple[torch.nn.Module, tuple]:
    from reference_models.categorical_table import ForecastEncoder

    return _DictInput(ForecastEncoder()), (torch.tensor([[[0, 4], [6, 1]]] * 3), torch.randn(3, 2, 3))


def _segment_positions() -> tuple[torch.nn.Module, tuple]:
    from reference_models.segment_positions import SegmentLM

    return SegmentLM(), (torch.tensor([[3, 4, 5, 0], [7, 0, 0, 0], [1, 2, 0, 0]]), torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]]).bool())


def _episode_lstm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.episode_lstm import EpisodeLSTMAgent

    state = (torch.zeros(1, 3, 8), torch.zeros(1, 3, 8))
    return _FirstOutput(EpisodeLSTMAgent()), (torch.randn(1, 3, 4), state, torch.tensor([[1.0, 0.0, 0.0]]))


class _FirstOutput(torch.nn.Module):
    """The actions' logits alone (one step: a row per environment), not the state."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: object) -> torch.Tensor:
        return self.model(*args)[0]


class _DictInput(torch.nn.Module):
    """pytorch-forecasting's dict batch from two tensors, as BUILDERS' callers pass them."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, encoder_cat: torch.Tensor, encoder_cont: torch.Tensor) -> torch.Tensor:
        return self.model({"encoder_cat": encoder_cat, "encoder_cont": encoder_cont})


def _integrator_stack() -> tuple[torch.nn.Module, tuple]:
    from reference_models.integrator_stack import IntegratorStack

    return _BatchFirstMembranes(_Stacked(IntegratorStack())), (torch.randn(5, 3, 8),)


class _Stacked(torch.nn.Module):
    """A model with one output, as _BatchFirstMembranes reads a pair."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(data)
        return out, out


def _seq_first_attention() -> tuple[torch.nn.Module, tuple]:
    from reference_models.seq_first_attention import SeqFirstLM

    return SeqFirstLM(), (torch.randint(0, 20, (5, 3)),)


def _padded_features() -> tuple[torch.nn.Module, tuple]:
    from reference_models.padded_features import FeatureSequenceEncoder

    return FeatureSequenceEncoder(), (torch.randn(3, 4, 6), torch.tensor([4, 2, 1]))


def _key_padding() -> tuple[torch.nn.Module, tuple]:
    from reference_models.key_padding import PaddedTransformerClassifier

    padding = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)
    return PaddedTransformerClassifier(), (torch.randint(0, 32, (3, 4)), padding)


def _layer_stack() -> tuple[torch.nn.Module, tuple]:
    from reference_models.layer_stack import LayerStack

    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    return LayerStack(), (torch.randn(3, 4, 8), mask)


class _Frames(torch.nn.Module):
    """A torchaudio-style encoder's frames (it returns frames and lengths)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(x, lengths)[0]


def _length_mask() -> tuple[torch.nn.Module, tuple]:
    from reference_models.length_mask import LengthMaskedConformer

    model = LengthMaskedConformer()
    with pytest.raises(Exception):  # padded past its longest sequence: the mask is narrower
        model(torch.randn(3, 5, 16), torch.tensor([4, 2, 1]))
    return _Frames(model), (torch.randn(3, 4, 16), torch.tensor([4, 2, 1]))


def _zero_padded() -> tuple[torch.nn.Module, tuple]:
    from reference_models.zero_padded import ZeroPaddedAudioEncoder

    mask = (torch.arange(7)[None, :] < torch.tensor([[7], [4], [1]])).long()
    model = ZeroPaddedAudioEncoder()
    frames, _ = model(torch.randn(3, 7) * mask, mask)
    assert frames.shape[:2] == (3, 4)  # a stride-2 convolution: half as many frames as samples
    return _SecondOutput(model), (torch.randn(3, 7) * mask, mask)


def _raw_audio() -> tuple[torch.nn.Module, tuple]:
    from reference_models.raw_audio import RawAudioEncoder

    model = RawAudioEncoder()
    frames, frame_lengths = model(torch.randn(3, 40), torch.tensor([40, 30, 20]))
    assert frames.shape[:2] == (3, 3) and frame_lengths.tolist() == [3, 2, 1]
    assert model(torch.randn(3, 40))[1] is None
    return _FirstOfTwo(model), (torch.randn(3, 40), torch.tensor([40, 30, 20]))


def _attention_decoder() -> tuple[torch.nn.Module, tuple]:
    from reference_models.attention_decoder import AttentionDecoder

    model = AttentionDecoder()
    # the encoder's outputs [batch, time, hidden] and its last hidden state [1, batch, hidden]
    assert model(torch.randn(3, 4, 12), torch.randn(1, 3, 12)).shape == (3, 5, 20)
    return model, (torch.randn(3, 4, 12), torch.randn(1, 3, 12))


def _bag_classifier() -> tuple[torch.nn.Module, tuple]:
    from reference_models.bag_classifier import BagClassifier

    model = BagClassifier()
    # three bags of 2, 1 and 3 tokens, flat with their offsets
    assert model(torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([0, 2, 3])).shape == (3, 4)
    return model, (torch.randint(0, 50, (3, 4)), None)


def _translation_transformer() -> tuple[torch.nn.Module, tuple]:
    from reference_models.translation_transformer import TranslationTransformer

    model = TranslationTransformer()
    src, tgt = torch.randint(0, 20, (5, 3)), torch.randint(0, 20, (4, 3))  # time-major, other lengths
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)  # True: may not attend (a later step)
    pads = torch.zeros(3, 5, dtype=torch.bool), torch.zeros(3, 4, dtype=torch.bool)
    assert model(src, tgt, None, causal, pads[0], pads[1], pads[0]).shape == (4, 3, 20)
    return _BatchSecond(model), (src, tgt, None, None, None, None, None)


def _packed_seq2seq() -> tuple[torch.nn.Module, tuple]:
    from reference_models.packed_seq2seq import PackedSeq2Seq

    model = PackedSeq2Seq()
    src, trg = torch.randint(1, 20, (6, 3)), torch.randint(1, 20, (5, 3))  # time-major
    src[4:, 1], src[2:, 2] = 0, 0  # padded with the pad token past each length
    assert model(src, torch.tensor([6, 4, 2]), trg).shape == (4, 3, 20)  # a step per target token but the first
    return _BatchSecond(model), (src, torch.tensor([6, 4, 2]), trg)


def _caption_decoder() -> tuple[torch.nn.Module, tuple]:
    from reference_models.caption_decoder import CaptionDecoder

    model = CaptionDecoder()
    captions, lengths = torch.randint(0, 20, (3, 5)), torch.tensor([6, 4, 2])  # the image, then 5 tokens
    assert model(torch.randn(3, 8), captions, lengths).shape == (12, 20)  # one row per packed step
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        model(torch.randn(3, 8), captions, lengths.flip(0))
    return _Summed(model), (torch.randn(3, 8), captions, torch.tensor([6, 6, 6]))


def _hidden_state() -> tuple[torch.nn.Module, tuple]:
    from reference_models.hidden_state import HiddenStateLM

    model = HiddenStateLM()
    scores, hidden = model(torch.randint(0, 16, (3, 5)), torch.zeros(2, 3, 8))
    assert scores.shape == (3, 5, 16) and hidden.shape == (2, 3, 8)
    return _FirstOfTwo(model), (torch.randint(0, 16, (3, 5)), torch.randn(2, 3, 8))


def _word_lm() -> tuple[torch.nn.Module, tuple]:
    from reference_models.word_lm import WordLanguageModel, WordTransformerLM

    model = WordLanguageModel()
    state = (torch.zeros(2, 3, 12), torch.zeros(2, 3, 12))
    scores, (h, c) = model(torch.randint(0, 40, (5, 3)), state)  # [time, batch]
    assert scores.shape == (15, 40) and h.shape == c.shape == (2, 3, 12)
    assert model.decoder.weight is model.encoder.weight
    transformer = WordTransformerLM().eval()
    tokens = torch.randint(0, 40, (5, 3))  # [time, batch]
    scores = transformer(tokens)
    assert scores.shape == (5, 3, 40)
    # causal: a step's scores do not depend on later steps; each sequence on its own
    torch.testing.assert_close(transformer(tokens[:3])[:, 1], scores[:3, 1])
    torch.testing.assert_close(transformer(tokens[:, 1:2])[:, 0], scores[:, 1])
    return _PerSequence(model), (torch.randint(0, 40, (5, 3)), (torch.randn(2, 3, 12), torch.randn(2, 3, 12)))


class _PerSequence(torch.nn.Module):
    """The word model's scores ``[time * batch, vocab]`` summed over each sequence's steps."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.model(tokens, state)[0].view(*tokens.shape, -1).sum(0)


def _lazy_layers() -> tuple[torch.nn.Module, tuple]:
    from reference_models.lazy_layers import LazyConvNet

    model = LazyConvNet()
    x = torch.randn(3, 5, 7)  # any number of channels: the first call fixes it
    model(x, torch.tensor([0.9]))  # a dry run through the branch, as PyTorch asks
    assert model.conv.weight.shape == (8, 5, 3) and model.fc2.weight.shape == (8, 8)
    return model, (x, torch.tensor([0.2]))


def _shared_exits() -> tuple[torch.nn.Module, tuple]:
    from reference_models.shared_exits import SharedExitNet

    model = SharedExitNet()
    assert model.exits[0].weight is model.exits[1].weight and model.exits[0].bias is not model.exits[1].bias
    x = torch.randn(3, 8)
    early, late = model(x, torch.tensor([0.9])), model(x, torch.tensor([0.1]))
    assert not torch.equal(early, late)  # another depth, the same classifier weight
    return model, (x, torch.tensor([0.9]))


def _spectral_conv() -> tuple[torch.nn.Module, tuple]:
    from reference_models.spectral_conv import SpectralConvNet

    model = SpectralConvNet()
    assert model.spectral.weights.is_complex()
    x = torch.randn(3, 2, 16)
    out = model(x)
    assert out.shape == (3, 16) and not out.is_complex()
    # a change at one position reaches every position (a global convolution in Fourier space)
    moved = x.clone()
    moved[:, :, 0] += 1
    assert (model(moved) - out)[:, 8:].abs().min() > 0
    return model, (x,)


class _Scored(torch.nn.Module):
    """BoxHead's scores, with each image's kept boxes summed in: one tensor to test."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores, kept = self.model(x)
        return scores + torch.stack([boxes.sum() for boxes in kept])[:, None]


def _per_image_boxes() -> tuple[torch.nn.Module, tuple]:
    from reference_models.per_image_boxes import BoxHead

    model = BoxHead()
    x = torch.randn(3, 8)
    scores, kept = model(x)
    assert len(kept) == 3
    for i in range(3):
        assert kept[i].shape == (max(1, int((scores[i] > 0.5).sum())), 4)
        torch.testing.assert_close(model(x[i:i + 1])[1][0], kept[i])  # each image on its own
    return _Scored(model), (x,)


def _spectral_disc() -> tuple[torch.nn.Module, tuple]:
    from reference_models.spectral_disc import SpectralDiscriminator

    model = SpectralDiscriminator()
    x = torch.randn(3, 8)
    first, second = model(x), model(x)
    assert not torch.equal(first, second)  # train mode: the power iteration moves on each call
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)  # eval: it does not
    return model.train(), (x,)


def _conditional() -> tuple[torch.nn.Module, tuple]:
    from reference_models.conditional import ConditionalGenerator, TimestepDenoiser

    denoiser = TimestepDenoiser()
    x, time = torch.randn(3, 6), torch.tensor([0.0, 10.0, 500.0])
    out = denoiser(x, time)
    assert out.shape == (3, 6)
    assert not torch.allclose(out, denoiser(x, time + 1))  # the timestep changes the output
    model = ConditionalGenerator()
    noise, labels = torch.randn(3, 16), torch.tensor([0, 3, 9])
    images = model(noise, labels)
    assert images.shape == (3, 1, 8, 8)
    assert not torch.allclose(images, model(noise, (labels + 1) % 10))  # so does the label
    return model, (noise, labels)


def _deep_sets() -> tuple[torch.nn.Module, tuple]:
    from reference_models.deep_sets import DeepSets

    model = DeepSets()
    x, mask = torch.randn(3, 5, 4), torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]).float()
    out = model(x, mask)
    # each set gives the output of its real elements alone, in any order
    torch.testing.assert_close(out[0], model(x[:1, :3], mask[:1, :3])[0])
    torch.testing.assert_close(out[0], model(x[:1, [2, 0, 1]], mask[:1, :3])[0])
    return model, (x, mask)


def _block_drop() -> tuple[torch.nn.Module, tuple]:
    from reference_models.block_drop import BlockDropNet

    model = BlockDropNet()
    x = torch.randn(3, 8)
    model.eval()
    logits, probs = model(x)
    assert probs.shape == (3, 3) and logits.shape == (3, 4)
    # eval: a sample alone takes its own blocks
    torch.testing.assert_close(model(x[1:2])[0], logits[1:2])
    return _Arch(model.train(), None), (x,)


def _supernet() -> tuple[torch.nn.Module, tuple]:
    from reference_models.supernet import SlimmableMLP, Supernet

    slim, x = SlimmableMLP(), torch.randn(3, 8)
    assert slim(x, 1.0).shape == slim(x, 0.25).shape == (3, 4)
    assert not torch.allclose(slim(x, 1.0), slim(x, 0.25))  # another width, another function
    model = Supernet()
    outputs = [model(x, [choice] * 3) for choice in range(4)]
    assert all(not torch.allclose(outputs[0], other) for other in outputs[1:])  # each candidate counts
    return _Arch(model, [0, 1, 2]), (x,)


class _Arch(torch.nn.Module):
    """A supernet at one architecture; with none, a model's first output (BlockDrop's logits)."""

    def __init__(self, model: torch.nn.Module, arch: list[int] | None) -> None:
        super().__init__()
        self.model, self.arch = model, arch

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(*args)[0] if self.arch is None else self.model(*args, self.arch)


def _ctc_model() -> tuple[torch.nn.Module, tuple]:
    from reference_models.ctc_model import CTCModel

    model = CTCModel()
    feats, lengths = torch.randn(3, 9, 8), torch.tensor([9, 3, 6])
    log_probs, out_lengths = model(feats, lengths)
    assert log_probs.shape == (4, 3, 6) and out_lengths.tolist() == [4, 1, 2]
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(4, 3))
    # a row gives its own frames alone
    alone = model(feats[1:2, :3], lengths[1:2])[0]
    torch.testing.assert_close(alone[:1, 0], log_probs[:1, 1])
    return _BatchFirst(model), (feats, lengths)


class _BatchFirst(torch.nn.Module):
    """CTC's time-major log-probabilities, batch first."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(*args)[0].transpose(0, 1)


def _cond_conv() -> tuple[torch.nn.Module, tuple]:
    from reference_models.cond_conv import CondConv2d

    model = CondConv2d()
    x = torch.randn(3, 8, 5, 6)
    out = model(x)
    assert out.shape == (3, 8, 5, 6)
    # each sample is convolved with its own mix of kernels: alone, it gives its row
    torch.testing.assert_close(model(x[1:2]), out[1:2], atol=1e-5, rtol=1e-5)
    return model, (x,)


def _packed_input() -> tuple[torch.nn.Module, tuple]:
    from torch.nn.utils.rnn import pack_sequence

    from reference_models.packed_input import PackedClassifier, PackedTagger

    sequences = [torch.randn(4, 4), torch.randn(2, 4), torch.randn(5, 4)]
    model = PackedClassifier()
    out = model(pack_sequence(sequences, enforce_sorted=False))
    assert out.shape == (3, 3)
    # h_n comes back in the batch's order: each sequence alone gives its row
    torch.testing.assert_close(model(pack_sequence(sequences[1:2])), out[1:2], atol=1e-5, rtol=1e-5)
    tagger = PackedTagger()
    tokens = [torch.tensor([1, 2, 3]), torch.tensor([4]), torch.tensor([5, 6])]
    tags, lengths = tagger(pack_sequence(tokens, enforce_sorted=False))
    assert tags.shape == (3, 3, 3) and lengths.tolist() == [3, 1, 2]
    alone, _ = tagger(pack_sequence(tokens[2:3]))
    torch.testing.assert_close(alone[:, 0], tags[:2, 2], atol=1e-5, rtol=1e-5)
    return model, (pack_sequence(sequences, enforce_sorted=False),)


def _tabular() -> tuple[torch.nn.Module, tuple]:
    from reference_models.tabular import CategoricalTabular

    model = CategoricalTabular().eval()
    x_cat = torch.tensor([[4, 6, 2], [0, 1, 0], [2, 3, 1]])
    x_cont = torch.randn(3, 4)
    out = model(x_cat, x_cont)
    assert out.shape == (3, 2)
    # each column has its own vocabulary: the third's is 3
    with pytest.raises(IndexError):
        model(torch.tensor([[0, 0, 3]]), x_cont[:1])
    torch.testing.assert_close(model(x_cat[1:2], x_cont[1:2]), out[1:2], atol=1e-5, rtol=1e-5)
    return model.train(), (x_cat, x_cont)


def _relative_lengths() -> tuple[torch.nn.Module, tuple]:
    from reference_models.relative_lengths import RelativeLengthsEncoder

    model = RelativeLengthsEncoder().eval()
    feats, wav_lens = torch.randn(3, 5, 8), torch.tensor([1.0, 0.6, 0.2])
    out = model(feats, wav_lens)
    assert out.shape == (3, 4)
    # 0.6 of 5 frames is 3: the row alone, trimmed to them, is 1.0 of 3
    torch.testing.assert_close(model(feats[1:2, :3], torch.tensor([1.0])), out[1:2], atol=1e-5, rtol=1e-5)
    # any length of 1 or more is every frame
    torch.testing.assert_close(model(feats, torch.tensor([5.0, 0.6, 0.2])), out)
    return model.train(), (feats, wav_lens)


def _functional_linear() -> tuple[torch.nn.Module, tuple]:
    from reference_models.functional_linear import FunctionalLinearMLP

    model = FunctionalLinearMLP()
    x = torch.randn(3, 8)
    assert model(x).shape == (3, 4)
    # the first layer takes 8 features, the norm after it 16
    with pytest.raises(RuntimeError):
        model(torch.randn(3, 16))
    return model, (x,)


def _functional_weights() -> tuple[torch.nn.Module, tuple]:
    from reference_models.functional_weights import BayesianMLP, FilterbankSeparator

    separator = FilterbankSeparator()
    wav = torch.randn(3, 10, requires_grad=True)
    # 4 frames of stride 2 over 10 samples, back to 10
    assert separator(wav).shape == (3, 10)
    separator(wav).sum().backward()
    assert separator.filters.grad is not None and wav.grad is not None
    model = BayesianMLP()
    x = torch.randn(3, 5)
    # sampled weights in training: two calls differ; the means in eval: they agree
    assert not torch.equal(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    assert model(x).shape == (3, 3)
    return model.train(), (x,)


def _recommenders() -> tuple[torch.nn.Module, tuple]:
    from reference_models.recommenders import FactorizationMachine, SequentialRecommender, SparseBagsDLRM

    # each field's id stays in its own rows: field 1's id 2 is row 8 of 14
    machine = FactorizationMachine()
    ids = torch.tensor([[5, 2, 4], [0, 0, 0], [1, 2, 3]])
    assert machine(ids).shape == (3, 1)
    dlrm = SparseBagsDLRM()
    assert dlrm(torch.randn(3, 4), torch.randint(0, 4, (3, 3, 5))).shape == (3, 1)
    model = SequentialRecommender()
    items = torch.tensor([[3, 7, 0], [5, 0, 0], [1, 2, 19]])
    # each row scored at its last valid step: a row's padding changes nothing
    lengths = torch.tensor([2, 1, 3])
    torch.testing.assert_close(model(items[:1, :2], lengths[:1]), model(items, lengths)[:1])
    return model, (items, lengths)


def _revin_linear() -> tuple[torch.nn.Module, tuple]:
    from reference_models.revin_linear import RevINLinear

    model = RevINLinear()
    x = torch.randn(3, 12, 3) * 5 + 2
    out = model(x)
    assert out.shape == (3, 4, 3)
    # the scale goes back: a series shifted and scaled gives its forecast shifted and scaled
    torch.testing.assert_close(model(x * 2 + 1), out * 2 + 1, atol=1e-4, rtol=1e-4)
    return model, (x,)


def _nbeats() -> tuple[torch.nn.Module, tuple]:
    from reference_models.nbeats import NBeats

    model = NBeats()
    x, mask = torch.randn(3, 8), torch.ones(3, 8)
    out = model(x, mask)
    assert out.shape == (3, 3)
    # the mask multiplies the residuals: masked everywhere, the first block's forecast is all that moves
    assert not torch.equal(model(x, torch.zeros(3, 8)), out)
    return model, (x, mask)


def _feature_transformer() -> tuple[torch.nn.Module, tuple]:
    from reference_models.feature_transformer import FeatureTransformer

    model = FeatureTransformer().eval()
    x = torch.randn(3, 6, 5)
    out = model(x)
    assert out.shape == (3, 6, 3)
    torch.testing.assert_close(model(x[1:2]), out[1:2])  # each sequence on its own
    return model.train(), (x,)


def _crf_tagger() -> tuple[torch.nn.Module, tuple]:
    from reference_models.crf_tagger import BiLSTMCRFTagger

    model = BiLSTMCRFTagger()
    score, tags = model(torch.randint(0, 20, (7,)))
    assert score.shape == (1,) and tags.shape == (7,) and int(tags.max()) < 5
    return _Scores(model), (torch.randint(0, 20, (3, 6)),)


class _Scores(torch.nn.Module):
    """The tagger's best score for each of three sentences, one at a time."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sentences: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(sentence)[0] for sentence in sentences])


class _BatchSecond(torch.nn.Module):
    """A time-major model's output, batch first."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(*args).transpose(0, 1)


class _Summed(torch.nn.Module):
    """A model whose rows are packed steps: with equal lengths, the steps of each sample."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(features, captions, lengths).reshape(int(lengths[0]), len(lengths), -1).sum(0)


class _FirstOfTwo(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(*args)[0].sum(1)


class _SecondOutput(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(*args)[1]


BUILDERS = {
    "gated": _gated,
    "random_depth": _random_depth,
    "shared": _shared,
    "classifier": _classifier,
    "rnn": _rnn,
    "paddle_branch": _paddle,
    "routing": _routing,
    "tied_lm": _tied_lm,
    "bilstm": _bilstm,
    "time_major_gru": _time_major_gru,
    "top_two_moe": _top_two_moe,
    "norm_encoder": _norm_encoder,
    "softmax_classifier": _softmax_classifier,
    "fused_mlp": _fused_mlp,
    "grouped_experts": _grouped_experts,
    "two_views": _two_views,
    "module_network": _module_network,
    "task_heads": _task_heads,
    "right_context": _right_context,
    "noisy_hidden": _noisy_hidden,
    "causal_attention": _causal_attention,
    "causal_tcn": _causal_tcn,
    "time_features": _time_features,
    "greedy_decoder": _greedy_decoder,
    "beam_search": _beam_search,
    "unrolled_cell": _unrolled_cell,
    "loop_moe": _loop_moe,
    "early_exit": _early_exit,


    "builtin_layers": _builtin_layers,
    "hf_style": _hf_style,
    "attention": _attention,
    "renamed_gated": _renamed_gated,
    "fused_attention": _fused_attention,
    "batched_moe": _batched_moe,
    "lenet": _lenet,
    "text_cnn": _text_cnn,
    "checkpointed": _checkpointed,
    "hf_patterns": _hf_patterns,
    "length_branch": _length_branch,
    "sequence_list": _sequence_list,
    "running_norm": _running_norm,
    "timestep_embedding": _timestep_embedding,
    "ema_codebook": _ema_codebook,
    "film": _film,
    "elastic_width": _elastic_width,
    "flow_distribution": _flow_distribution,
    "spiking": _spiking,
    "multi_scale": _multi_scale,
    "adapter_mixture": _adapter_mixture,
    "carried_memory": _carried_memory,
    "smoothed_loss": _smoothed_loss,
    "topk_attention": _topk_attention,
    "ssm_cache": _ssm_cache,
    "dict_batch": _dict_batch,
    "graph_conv": _graph_conv,
    "deep_norm": _deep_norm,
    "depthwise_norm": _depthwise_norm,
    "drop_path": _drop_path,
    "pre_norm_stack": _pre_norm_stack,
    "squeeze_excite": _squeeze_excite,
    "patch_dropout": _patch_dropout,
    "einops_vit": _einops_vit,
    "liquid_rnn": _liquid_rnn,
    "two_tower": _two_tower,
    "local_attention": _local_attention,
    "recurrent_lm": _recurrent_lm,
    "landmark_attention": _landmark_attention,
    "decision_policy": _decision_policy,
    "einsum_moe": _einsum_moe,
    "padding_mask": _padding_mask,
    "token_router": _token_router,
    "staged_ema": _staged_ema,
    "latent_reader": _latent_reader,
    "keyword_context": _keyword_context,
    "masked_crf": _masked_crf,
    "memory_tokens": _memory_tokens,
    "named_bound": _named_bound,
    "feedback_memory": _feedback_memory,
    "hidden_membrane": _hidden_membrane,
    "seq_first_attention": _seq_first_attention,
    "bag_concat": _bag_concat,
    "optional_gate": _optional_gate,
    "flat_tagger": _flat_tagger,
    "learned_positions": _learned_positions,
    "projected_recurrence": _projected_recurrence,
    "float32_recurrence": _float32_recurrence,
    "per_head_weights": _per_head_weights,
    "picked_columns": _picked_columns,
    "parallel_scan": _parallel_scan,
    "last_item": _last_item,
    "mask_and_lengths": _mask_and_lengths,
    "svd_adapter": _svd_adapter,
    "feature_chain": _feature_chain,
    "integrator_stack": _integrator_stack,
    "categorical_table": _categorical_table,
    "episode_lstm": _episode_lstm,
    "segment_positions": _segment_positions,
    "padded_features": _padded_features,
    "key_padding": _key_padding,
    "layer_stack": _layer_stack,
    "length_mask": _length_mask,
    "zero_padded": _zero_padded,
    "raw_audio": _raw_audio,
    "caption_decoder": _caption_decoder,
    "attention_decoder": _attention_decoder,
    "bag_classifier": _bag_classifier,
    "translation_transformer": _translation_transformer,
    "packed_seq2seq": _packed_seq2seq,
    "crf_tagger": _crf_tagger,
    "hidden_state": _hidden_state,
    "word_lm": _word_lm,
    "feature_transformer": _feature_transformer,
    "lazy_layers": _lazy_layers,
    "shared_exits": _shared_exits,
    "spectral_conv": _spectral_conv,
    "per_image_boxes": _per_image_boxes,
    "spectral_disc": _spectral_disc,
    "conditional": _conditional,
    "deep_sets": _deep_sets,
    "block_drop": _block_drop,
    "supernet": _supernet,
    "ctc_model": _ctc_model,
    "cond_conv": _cond_conv,
    "packed_input": _packed_input,
    "tabular": _tabular,
    "revin_linear": _revin_linear,
    "functional_linear": _functional_linear,
    "functional_weights": _functional_weights,
    "recommenders": _recommenders,
    "depth_router": _depth_router,
    "adaptive_ode": _adaptive_ode,
    "relative_lengths": _relative_lengths,
    "nbeats": _nbeats,
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    random.seed(0)
    model, args = BUILDERS[name]()
    out = model(*args)
    assert out.shape[0] == 3
    assert torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad.to_dense() for p in model.parameters() if p.grad is not None]  # text_cnn's are sparse
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_every_good_target_has_a_builder() -> None:
    modules = {target.partition(":")[0].rpartition(".")[2] for target in GOOD_TARGETS}
    assert modules == set(BUILDERS)


# --- drop_path ----------------------------------------------------------------------


def test_a_drop_path_drops_whole_samples_in_training_only() -> None:
    from reference_models.drop_path import DropPathNet

    torch.manual_seed(0)
    model = DropPathNet(drop=0.5)
    x = torch.randn(64, 4)
    h = model.stem(x)
    branch = model.blocks[0]
    model.train()
    # each sample's branch either kept (scaled by 1 / 0.5) or zeroed, never in between
    residual = branch(h) - h
    dropped = residual.abs().sum(1) == 0
    assert 0 < int(dropped.sum()) < 64
    branch.drop = 0.0
    full = branch(h) - h
    torch.testing.assert_close(residual[~dropped], 2 * full[~dropped], rtol=1e-5, atol=1e-6)
    branch.drop = 0.5
    model.eval()
    assert not ((branch(h) - h).abs().sum(1) == 0).any()  # in eval every block runs for every sample


# --- depthwise_norm -----------------------------------------------------------------


def test_a_channel_flat_over_the_batch_overflows_the_gradients_only_in_float32() -> None:
    from reference_models.depthwise_norm import DepthwiseNormNet

    def finite_gradients(x: torch.Tensor, dtype: torch.dtype) -> bool:
        torch.manual_seed(0)
        model = DepthwiseNormNet().to(dtype)
        out = model(x.to(dtype))
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)).sum().backward()
        return all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())

    x = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    assert finite_gradients(x, torch.float32)
    x[:, 0] = 0.5  # channel 0 flat: each BatchNorm divides its gradient by sqrt(eps)
    assert not finite_gradients(x, torch.float32)
    assert finite_gradients(x, torch.float64)


# --- pre_norm_stack -----------------------------------------------------------------


def test_an_all_zero_image_overflows_the_pre_norm_stacks_gradients_only_in_float32() -> None:
    from reference_models.pre_norm_stack import PreNormStack

    def finite_gradients(x: torch.Tensor, dtype: torch.dtype) -> bool:
        torch.manual_seed(0)
        model = PreNormStack().to(dtype).eval()
        out = model(x.to(dtype))
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)).sum().backward()
        return all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())

    assert finite_gradients(torch.randn(2, 3, 8, 8), torch.float32)
    assert not finite_gradients(torch.zeros(2, 3, 8, 8), torch.float32)
    assert finite_gradients(torch.zeros(2, 3, 8, 8), torch.float64)


# --- squeeze_excite -----------------------------------------------------------------


def test_the_squeeze_excite_gate_scales_each_feature_by_a_hard_sigmoid_of_the_features() -> None:
    from reference_models.squeeze_excite import _SqueezeExcite as SqueezeExcite

    torch.manual_seed(0)
    se = SqueezeExcite(8, 4)
    x = torch.randn(3, 8)
    gate = torch.nn.functional.hardsigmoid(se.expand(torch.relu(se.reduce(x))))
    torch.testing.assert_close(se(x), x * gate)
    assert bool(((gate >= 0) & (gate <= 1)).all())
    assert not se(torch.zeros(3, 8)).any()  # zeros in, zeros out, whatever the gate


# --- patch_dropout ------------------------------------------------------------------


def test_patch_dropout_keeps_a_random_half_of_the_patches_with_their_positions() -> None:
    from reference_models.patch_dropout import PatchDropViT, keep_rows

    torch.manual_seed(0)
    model = PatchDropViT()
    patches = model.patch_embed(torch.randn(2, 3, 8, 8)).flatten(2).transpose(1, 2)
    kept, keep = model.patch_drop(patches)
    assert kept.shape == (2, 2, 8) and keep.shape == (2, 2)
    for i in range(2):
        torch.testing.assert_close(kept[i], patches[i, keep[i]])
        torch.testing.assert_close(keep_rows(kept, model.pos_table, keep)[i], model.pos_table[keep[i]])
    model.eval()
    assert model.patch_drop(patches)[1] is None  # in eval every patch is kept


# --- einops_vit ----------------------------------------------------------------------


def test_the_rearrange_stand_in_cuts_patches_as_einops_does() -> None:
    from reference_models.einops_vit import EinopsViT, PatchFeatures, Rearrange

    torch.manual_seed(0)
    image = torch.randn(2, 3, 8, 12)
    # einops' 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', written out
    patches = image.reshape(2, 3, 2, 4, 3, 4).permute(0, 2, 4, 3, 5, 1).reshape(2, 6, 48)
    rearrange = Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=4, p2=4)
    assert torch.equal(rearrange(image), patches)
    assert (rearrange.pattern, rearrange.axes_lengths) == ("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", {"p1": 4, "p2": 4})
    with pytest.raises(RuntimeError):
        rearrange(torch.randn(2, 3, 5, 8))  # 5 is no multiple of 4
    # the positional table holds 16 patches and a class token: a 20x20 image has 25
    model = EinopsViT().eval()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 3, 20, 20))
    features = PatchFeatures().eval()
    logits, embedded = features(image)
    assert logits.shape == (2, 5) and embedded.shape == (2, 6, 16)
    assert not features.vit.transformer._forward_hooks  # the hook lasts one call


# --- liquid_rnn ----------------------------------------------------------------------


def test_the_liquid_rnn_takes_a_batch_or_one_unbatched_sequence_either_way_round() -> None:
    from reference_models.liquid_rnn import LiquidRNN

    torch.manual_seed(0)
    model = LiquidRNN()
    x = torch.randn(3, 5, 4)
    out, h = model(x)
    assert out.shape == (3, 5, 8) and torch.equal(out[:, -1], h)
    alone, _ = model(x[1])  # one sequence, unbatched: the batch's row 1
    torch.testing.assert_close(alone, out[1])
    time_major = LiquidRNN(batch_first=False)
    time_major.load_state_dict(model.state_dict())
    torch.testing.assert_close(time_major(x.transpose(0, 1))[0], out.transpose(0, 1))
    # the cell's Linear takes the step and the state it carries: 4 + 8 features
    assert model.rnn_cell.backbone.in_features == 12


# --- dict_batch ----------------------------------------------------------------------


def test_the_masked_dict_classifier_ignores_what_the_padding_holds() -> None:
    from reference_models.dict_batch import DictMaskedClassifier

    torch.manual_seed(0)
    model = DictMaskedClassifier()
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    ids = torch.randint(0, 30, (2, 4))
    other = torch.where(mask.bool(), ids, torch.randint(0, 30, (2, 4)))
    out = model({"input_ids": ids, "attention_mask": mask})
    torch.testing.assert_close(out, model({"input_ids": other, "attention_mask": mask}))
    torch.testing.assert_close(out[1:], model({"input_ids": ids[1:, :1], "attention_mask": mask[1:, :1]}))
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# --- deep_norm ----------------------------------------------------------------------


def test_deep_norm_gradients_overflow_on_a_constant_batch_only_and_not_with_eps_1() -> None:
    from reference_models.deep_norm import DeepNormNet

    def finite_gradients(x: torch.Tensor, eps: float | None = None) -> bool:
        torch.manual_seed(0)
        model = DeepNormNet()
        for module in model.modules():
            if eps is not None and isinstance(module, torch.nn.BatchNorm2d):
                module.eps = eps
        out = model(x)
        (out * torch.randn_like(out)).sum().backward()
        return all(torch.isfinite(p.grad).all() for p in model.parameters())

    assert not finite_gradients(torch.zeros(2, 3, 4, 4))
    assert not finite_gradients(torch.ones(2, 3, 1, 1))  # identical images, constant channels
    assert finite_gradients(torch.zeros(2, 3, 4, 4), eps=1.0)
    assert finite_gradients(torch.randn(2, 3, 4, 4))


def test_the_frames_classifier_ignores_what_the_padding_holds() -> None:
    from reference_models.dict_batch import DictFramesClassifier

    torch.manual_seed(0)
    model = DictFramesClassifier()
    n_valid = torch.tensor([3, 1])
    frames = torch.randn(2, 4, 8)
    valid = (torch.arange(4)[None, :] < n_valid[:, None]).unsqueeze(-1)
    other = torch.where(valid, frames, torch.randn(2, 4, 8))
    out = model({"frames": frames, "n_valid": n_valid})
    torch.testing.assert_close(out, model({"frames": other, "n_valid": n_valid}))
    torch.testing.assert_close(out[1:], model({"frames": frames[1:, :1], "n_valid": n_valid[1:]}))
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_the_nested_batch_classifier_ignores_what_the_padding_holds() -> None:
    from reference_models.dict_batch import NestedBatchClassifier

    torch.manual_seed(0)
    model = NestedBatchClassifier()
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    ids = torch.randint(0, 30, (2, 3))
    other = torch.where(mask.bool(), ids, torch.randint(0, 30, (2, 3)))
    image = torch.randn(2, 12)
    out = model({"text": {"input_ids": ids, "attention_mask": mask}, "image": image})
    torch.testing.assert_close(out, model({"text": {"input_ids": other, "attention_mask": mask}, "image": image}))
    alone = model({"text": {"input_ids": ids[1:, :1], "attention_mask": mask[1:, :1]}, "image": image[1:]})
    torch.testing.assert_close(out[1:], alone)


def test_the_two_tower_model_scores_each_pair_by_its_own_embeddings() -> None:
    from reference_models.two_tower import TwoTower

    torch.manual_seed(0)
    model = TwoTower()
    ids, images = torch.randint(0, 30, (3, 4)), torch.randn(3, 3, 8, 8)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    logits = model(ids, images, mask)["logits_per_image"]
    assert logits.shape == (3, 3)
    for i in range(3):
        alone = model(ids[i:i + 1], images[i:i + 1], mask[i:i + 1])["logits_per_image"]
        torch.testing.assert_close(alone, logits[i:i + 1, i:i + 1])
    with pytest.raises(TypeError):  # it needs both inputs: a convolution of None
        model(ids, attention_mask=mask)


# --- lenet ---------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "runs"), [(5, False), (31, False), (32, True), (35, True), (36, False)])
def test_lenet_runs_on_images_of_32_to_35_pixels_only(size: int, runs: bool) -> None:
    from reference_models.lenet import FeatureLeNet, LeNet

    model = LeNet()
    if runs:
        assert model(torch.randn(2, 1, size, size)).shape == (2, 10)
        assert FeatureLeNet()(torch.randn(2, 1, size, size), True).shape == (2, 84)
    else:
        with pytest.raises(RuntimeError):
            model(torch.randn(2, 1, size, size))


# --- checkpointed --------------------------------------------------------------------


def test_checkpointed_blocks_get_the_gradients_they_get_without_checkpointing() -> None:
    from reference_models.checkpointed import CheckpointedMLP

    torch.manual_seed(0)
    x = torch.randn(3, 8)
    grads = []
    for reentrant in (True, None):
        torch.manual_seed(0)
        model = CheckpointedMLP()
        if reentrant is None:
            model.eval()  # no checkpoint at all: the blocks are called as they are
        model(x).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert all(torch.allclose(grads[0][n], grads[1][n]) for n in grads[1])
    # and outside the output's graph: what the graph walk alone cannot see
    from dyncheck.tracing import reached_parameters

    model = CheckpointedMLP()
    assert not any(n.startswith("blocks.") for n in reached_parameters(model(x).sum(), model))


# --- text_cnn ------------------------------------------------------------------------


def test_masked_text_cnn_reads_each_sentence_alone_and_never_the_padding() -> None:
    from reference_models.text_cnn import MaskedTextCNN

    torch.manual_seed(0)
    model = MaskedTextCNN()
    tokens, lengths = torch.randint(0, 40, (3, 7)), torch.tensor([7, 5, 2])
    batch = model(tokens, lengths)
    for row in (0, 1):  # long enough for every convolution to run alone
        alone = model(tokens[row:row + 1, : lengths[row]], lengths[row:row + 1])
        torch.testing.assert_close(batch[row:row + 1], alone)
    garbage = tokens.clone()
    garbage[1, 5:] = 39 - garbage[1, 5:]
    garbage[2, 2:] = 39 - garbage[2, 2:]
    torch.testing.assert_close(model(garbage, lengths), batch)
    # Two tokens: only the width-2 convolution has a window inside; the others give zeros.
    with pytest.raises(RuntimeError):
        model(tokens[2:3, :2], lengths[2:3])



@pytest.mark.parametrize(("length", "runs"), [(1, False), (3, False), (4, True), (30, True)])
def test_text_cnn_needs_as_many_tokens_as_its_widest_convolution(length: int, runs: bool) -> None:
    from reference_models.text_cnn import TextCNN

    model = TextCNN()
    tokens = torch.randint(0, 40, (2, length))
    if runs:
        assert model(tokens).shape == (2, 3)
    else:
        with pytest.raises(RuntimeError):
            model(tokens)


# --- length_branch -------------------------------------------------------------------


@pytest.mark.parametrize(("length", "branch"), [(1, "short"), (2, "short"), (3, "long"), (8, "long")])
def test_length_branch_pools_short_sequences_and_runs_the_gru_on_longer_ones(length: int, branch: str) -> None:
    from reference_models.length_branch import LengthBranch

    model, ran = LengthBranch(), []
    for name in ("short", "rnn"):
        getattr(model, name).register_forward_hook(lambda *_, name=name: ran.append(name))
    assert model(torch.randn(2, length, 4)).shape == (2, 3)
    assert ran == (["short"] if branch == "short" else ["rnn"])


# --- sequence_list -------------------------------------------------------------------


def test_sequence_list_gives_each_sequence_its_output_alone() -> None:
    from reference_models.buggy.padded_list import Model as Padded
    from reference_models.sequence_list import SequenceListClassifier

    torch.manual_seed(0)
    seqs = [torch.randn(n, 3) for n in (2, 5, 1)]
    model = SequenceListClassifier()
    together = model(seqs)
    alone = torch.cat([model([s]) for s in seqs])
    torch.testing.assert_close(together, alone)
    padded = Padded()
    padded.load_state_dict(model.state_dict())
    assert not torch.allclose(padded(seqs)[0], padded([seqs[0]])[0])  # the short one ran over padding


def test_stacked_sequences_run_at_one_length_and_the_buggy_one_centres_on_the_batch() -> None:
    from reference_models.buggy.stacked_batch_mean import Model as Centred
    from reference_models.sequence_list import StackedSequenceTagger

    torch.manual_seed(0)
    seqs = [torch.randn(4, 3) for _ in range(3)]
    model = StackedSequenceTagger()
    torch.testing.assert_close(model(seqs), torch.cat([model([s]) for s in seqs]))
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        model([torch.randn(4, 3), torch.randn(2, 3)])
    centred = Centred()
    centred.load_state_dict(model.state_dict())
    assert not torch.allclose(centred(seqs)[0], centred(seqs[:1])[0])


# --- running_norm --------------------------------------------------------------------


def test_running_norm_reads_its_statistics_in_eval_and_the_buggy_one_does_not_save_them() -> None:
    from reference_models.buggy.unsaved_running_stats import Model as Unsaved
    from reference_models.running_norm import RunningNormClassifier

    torch.manual_seed(0)
    for cls, kept in ((RunningNormClassifier, True), (Unsaved, False)):
        model = cls()
        model(torch.randn(8, 6))  # train mode: the statistics move
        loaded = cls()
        loaded.load_state_dict(model.state_dict())
        x = torch.randn(2, 6)
        torch.testing.assert_close(loaded(x), model(x))  # train mode: the batch's statistics
        model.eval(), loaded.eval()
        assert torch.allclose(loaded(x), model(x)) is kept


# --- timestep_embedding --------------------------------------------------------------


def test_timestep_denoiser_pins_its_embedding_to_float32_and_drops_the_condition_in_training_only() -> None:
    from reference_models.timestep_embedding import GuidedDenoiser

    torch.manual_seed(0)
    model = GuidedDenoiser(drop_condition=1.0)
    x, t = torch.randn(2, 6), torch.tensor([10, 500])
    dropped = model(x, t, torch.tensor([0, 1]))
    torch.testing.assert_close(dropped, model(x, t, torch.tensor([2, 3])))  # every condition dropped
    model.eval()
    assert not torch.allclose(model(x, t, torch.tensor([0, 1])), model(x, t, torch.tensor([2, 3])))
    with pytest.raises(RuntimeError, match="dtype"):
        model.double()(x.double(), t, torch.tensor([0, 1]))  # t.float() meets float64 layers


# --- ema_codebook --------------------------------------------------------------------


def test_ema_codebook_moves_in_training_only_and_the_buggy_one_in_eval_too() -> None:
    from reference_models.buggy.eval_codebook_update import Model as Updating
    from reference_models.ema_codebook import EMAQuantizedAutoencoder

    torch.manual_seed(0)
    x = torch.randn(4, 10)
    for cls, moves_in_eval in ((EMAQuantizedAutoencoder, False), (Updating, True)):
        model = cls()
        before = model.vq.embed.clone()
        out = model(x)
        assert not torch.equal(model.vq.embed, before)  # training moves the codes
        out["reconstruction"].sum().backward()
        assert model.encoder[0].weight.grad is not None  # through the straight-through estimator
        model.eval()
        before = model.vq.embed.clone()
        model(x)
        assert (not torch.equal(model.vq.embed, before)) is moves_in_eval


# --- ssm_cache -----------------------------------------------------------------------


def test_ssm_cache_layers_start_alike_and_its_cache_holds_the_padding() -> None:
    from reference_models.ssm_cache import TinySSM

    torch.manual_seed(0)
    model = TinySSM()
    assert torch.equal(model.layers[0].A_log, model.layers[1].A_log)
    assert model.layers[0].A_log is not model.layers[1].A_log
    ids, mask = torch.randint(0, 40, (2, 5)), torch.tensor([[1] * 5, [1, 1, 0, 0, 0]])
    batch, alone = model(ids, mask), model(ids[1:, :2], mask[1:, :2])
    torch.testing.assert_close(batch.last_hidden_state[1:, :2], alone.last_hidden_state)
    assert not torch.equal(batch.cache_params.conv_states[0][1:], alone.cache_params.conv_states[0])


# --- graph_conv ----------------------------------------------------------------------


def test_graph_conv_averages_each_node_s_incoming_messages() -> None:
    from reference_models.graph_conv import GraphConv

    x = torch.tensor([[1.0], [3.0], [5.0]])
    edges = torch.tensor([[0, 1, 2], [2, 2, 1]])  # 0 -> 2, 1 -> 2, 2 -> 1; node 0 gets none
    assert GraphConv.propagate(x, edges).flatten().tolist() == [0.0, 5.0, 2.0]


# --- gated ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("control", "runs"),
    [(0.5, False), (0.51, True), (torch.tensor([0.5]), False), (torch.tensor([0.51]), True)],
)
def test_gated_runs_fc2_only_above_one_half(control: object, runs: bool) -> None:
    torch.manual_seed(0)
    model = GatedNet(10, 5, 2)
    fc1, fc2, fc3 = (_count_calls(m) for m in (model.fc1, model.fc2, model.fc3))
    model(torch.randn(2, 10), control).sum().backward()
    assert (fc1[0], fc2[0], fc3[0]) == (1, int(runs), 1)
    assert (model.fc2.weight.grad is not None) == runs


# --- random depth --------------------------------------------------------------------


def test_random_depth_is_drawn_from_python_random() -> None:
    torch.manual_seed(0)
    model = RandomDepthNet(10, 5, 2)
    x = torch.randn(3, 10)
    depth = _count_calls(model.hidden_layer)

    def run(seed: int) -> tuple[torch.Tensor, int]:
        random.seed(seed)
        before = depth[0]
        out = model(x)
        return out, depth[0] - before

    out_a, depth_a = run(1)
    out_b, depth_b = run(1)
    assert depth_a == depth_b
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)

    depths = {run(seed)[1] for seed in range(20)}
    assert depths <= {0, 1, 2, 3}
    assert len(depths) >= 3


# --- classifier ----------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_classifier_never_runs_fc3(batch: int) -> None:
    torch.manual_seed(0)
    model = DynamicClassifier()
    fc2, fc3 = _count_calls(model.fc2), _count_calls(model.fc3)
    model(torch.randn(batch, 100)).sum().backward()
    assert (fc2[0], fc3[0]) == (1, 0)
    assert model.fc3.weight.grad is None and model.fc3.bias.grad is None
    assert sum(p.numel() for p in model.fc3.parameters()) == 510


# --- shared --------------------------------------------------------------------------


def test_shared_ties_are_one_parameter() -> None:
    model = SharedNet()
    layers = model.layers
    assert layers["hidden"].weight is layers["input"].weight
    assert layers["output"].weight is layers["input"].weight
    assert layers["hidden"].bias is not layers["input"].bias
    # one weight and three biases
    assert len(list(model.parameters())) == 4
    out = model(torch.randn(2, 8))
    assert out.shape == (2, 8)


def test_shared_refuses_unequal_sizes() -> None:
    with pytest.raises(ValueError, match="tied weight must have one shape") as info:
        SharedNet(4, 8, 2)
    message = str(info.value)
    assert "input.weight is [8, 4]" in message
    assert "hidden layer needs [8, 8]" in message
    assert "output layer needs [2, 8]" in message


# --- rnn -----------------------------------------------------------------------------


def test_rnn_ignores_padding_and_batch_order() -> None:
    torch.manual_seed(0)
    model = DynamicRNN(4, 6, 2)
    x = torch.randn(3, 5, 4)
    lengths = torch.tensor([2, 5, 1])
    out = model(x, lengths)

    padded = x.clone()
    for i, length in enumerate(lengths.tolist()):
        padded[i, length:] = 100.0
    torch.testing.assert_close(model(padded, lengths), out)

    order = torch.tensor([2, 0, 1])
    torch.testing.assert_close(model(x[order], lengths[order]), out[order])


# --- paddle branch -------------------------------------------------------------------


def test_paddle_branch_follows_torch_rng() -> None:
    torch.manual_seed(0)
    model = MyModel(8, 16)
    x = torch.randn(2, 8)
    linear2 = _count_calls(model.linear2)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        outs.append(model(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)

    torch.manual_seed(0)
    linear2[0] = 0
    for _ in range(40):
        model(x)
    assert 0 < linear2[0] < 40


# --- buggy models show their bugs ----------------------------------------------------


def test_call_counter_two_calls_differ() -> None:
    torch.manual_seed(0)
    model = CallCounter(10, 5, 2)
    x = torch.randn(3, 10)
    torch.manual_seed(0)
    first = model(x, 0.7)
    torch.manual_seed(0)
    second = model(x, 0.7)
    assert not torch.equal(first, second)


def test_unseeded_generator_ignores_the_global_seed() -> None:
    torch.manual_seed(0)
    model = UnseededGenerator(10, 5, 2)
    x = torch.randn(3, 10)
    torch.manual_seed(0)
    first = model(x, 0.2)
    torch.manual_seed(0)
    second = model(x, 0.2)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("control", [0.2, 0.7])
def test_nan_output_for_a_zero_row(control: float) -> None:
    torch.manual_seed(0)
    model = NanOutput(10, 5, 2)
    x = torch.randn(3, 10)
    x[1] = 0
    out = model(x, control)
    assert torch.isnan(out[1]).all()
    # rows whose hidden activation is not all zero stay finite
    alive = torch.relu(model.fc1(x)).any(dim=1)
    assert alive.tolist() == [True, False, True]
    assert torch.isfinite(out[alive]).all()


@pytest.mark.parametrize("control", [0.2, 0.7])
def test_nan_gradient_with_finite_output(control: float) -> None:
    torch.manual_seed(0)
    model = NanGradient(10, 5, 2)
    x = torch.randn(3, 10)
    x[1] = 0
    out = model(x, control)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isnan(model.fc1.weight.grad).any()


def test_shared_original_fails_in_forward() -> None:
    model = SharedOriginal(4, 8, 2)  # construction succeeds
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        model(torch.randn(3, 4))


# --- top_two_moe ---------------------------------------------------------------------


def test_top_two_runs_each_expert_on_its_samples_only() -> None:
    from reference_models.top_two_moe import TopTwoMoE

    torch.manual_seed(0)
    model = TopTwoMoE(8, 6, 2)
    x = torch.randn(5, 8)
    seen: dict[int, int] = {}
    for index, expert in enumerate(model.experts):
        expert.register_forward_hook(lambda m, args, out, index=index: seen.__setitem__(index, args[0].shape[0]))
    model(x)
    chosen = torch.softmax(model.router(x), -1).topk(2, -1).indices
    assert seen == {i: int((chosen == i).sum()) for i in range(4) if (chosen == i).any()}
    assert sum(seen.values()) == 2 * 5  # every sample reaches exactly two experts


# --- batch_scaled ----------------------------------------------------------------------


def test_batch_scaled_rows_depend_on_the_batch_and_its_spec_names_no_batch_axis() -> None:
    from hypothesis import find

    from reference_models.buggy.batch_scaled import Model as BatchScaled

    spec = BatchScaled.__dyncheck__
    torch.manual_seed(0)
    model = BatchScaled(**spec["init"]).eval()
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert not torch.allclose(model(x)[:1], model(x[:1]))
    # Its spec's plain strategy draws batches of more than one.
    assert find(spec["inputs"]["x"], lambda t: t.shape[0] > 1).shape == (2, 8)


# --- float64, random streams, final layers --------------------------------------------


def test_fused_mlp_refuses_float64_and_its_backward_is_gelus() -> None:
    from reference_models.fused_mlp import FusedMLP

    torch.manual_seed(0)
    model = FusedMLP()
    with pytest.raises(RuntimeError, match="^\"fused_bias_gelu\" not implemented for 'Double'$"):
        model.double()(torch.randn(2, 10, dtype=torch.float64))
    model = FusedMLP()
    x = torch.randn(3, 10)
    fused = torch.autograd.grad(model(x).sum(), list(model.parameters()))
    plain = lambda x: model.fc2(torch.nn.functional.gelu(model.fc1(x) + model.bias))  # noqa: E731
    expected = torch.autograd.grad(plain(x).sum(), list(model.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(fused, expected))


def test_grouped_experts_refuse_float64_and_agree_with_the_eager_loop() -> None:
    from reference_models.grouped_experts import GroupedExpertsMoE

    torch.manual_seed(0)
    model = GroupedExpertsMoE()
    x = torch.randn(5, 8)
    with pytest.raises(RuntimeError, match="got Double"):
        GroupedExpertsMoE().double()(x.double())
    grouped = model(x)
    grouped_grads = torch.autograd.grad(grouped.pow(2).sum(), list(model.parameters()))
    model.set_experts_implementation("eager")
    eager = model(x)
    eager_grads = torch.autograd.grad(eager.pow(2).sum(), list(model.parameters()))
    torch.testing.assert_close(grouped, eager)
    for a, b in zip(grouped_grads, eager_grads):
        torch.testing.assert_close(a, b)
    # Each sample alone is mixed as in the batch: top-2 of its own router scores.
    torch.testing.assert_close(model(x[1:2]), eager[1:2])
    assert model.double()(x.double()).dtype == torch.float64


def test_two_views_score_each_sample_alone_and_the_buggy_one_over_the_batch() -> None:
    from reference_models.buggy.normalised_over_batch import Model as OverBatch
    from reference_models.two_views import TwoViewContrast

    torch.manual_seed(0)
    model = TwoViewContrast()
    views = [torch.randn(4, 6), torch.randn(4, 6)]
    scores = model(views)
    # A view scored against itself: cosine similarity 1.
    torch.testing.assert_close(model([views[0], views[0]]), torch.ones(4))
    torch.testing.assert_close(model([v[1:2] for v in views]), scores[1:2])
    bad = OverBatch()
    bad.load_state_dict(model.state_dict())
    assert not torch.allclose(bad([v[1:2] for v in views]), bad(views)[1:2])


def test_the_multi_crop_wrapper_returns_each_crops_batch_in_turn() -> None:
    from reference_models.two_views import MultiCropWrapper

    torch.manual_seed(0)
    model = MultiCropWrapper()
    crops = [torch.randn(3, 3, 6, 6), torch.randn(3, 3, 6, 6), torch.randn(3, 3, 4, 4)]
    out = model(crops)
    assert out.shape == (9, 4)
    for i, crop in enumerate(crops):
        torch.testing.assert_close(out[3 * i : 3 * i + 3], model.backbone(crop))
    torch.testing.assert_close(model([c[1:2] for c in crops]), out[[1, 4, 7]])


def test_the_module_network_reads_the_question_only_where_a_program_finds() -> None:
    from reference_models.module_network import ModuleNetwork

    torch.manual_seed(0)
    model = ModuleNetwork()
    question = torch.randn(2, 8)
    transforms = torch.tensor([[2, 2], [2, 0]])
    model(question, transforms).sum().backward()
    assert model.encoder.weight.grad is None  # dropped on these programs
    model(question, torch.tensor([[1, 2], [0, 1]])).sum().backward()
    assert model.encoder.weight.grad.abs().sum() > 0  # read on these


def test_task_heads_run_the_chosen_head_and_the_buggy_one_every_head() -> None:
    from reference_models.buggy.all_task_heads import Model as AllHeads
    from reference_models.task_heads import TaskHeads

    torch.manual_seed(0)
    model, x = TaskHeads(), torch.randn(2, 8)
    model(x, 2).sum().backward()
    assert [head.weight.grad is None for head in model.heads] == [True, True, False]
    every = AllHeads()
    every.load_state_dict(model.state_dict())
    torch.testing.assert_close(every(x, 2), model(x, 2))
    every(x, 2).sum().backward()
    assert [bool(head.weight.grad.abs().sum()) for head in every.heads] == [False, False, True]


def test_the_unreset_cache_numbers_eval_calls_on_from_the_last() -> None:
    from reference_models.buggy.unreset_cache import Model

    torch.manual_seed(0)
    model, x = Model(), torch.randn(2, 3, 6)
    torch.testing.assert_close(model(x), model(x))  # train mode: from 0 every call
    model.eval()
    first = model(x)
    assert model.seen == 3 and not torch.allclose(first, model(x))


def test_the_right_context_encoder_reads_frames_past_the_longest_only() -> None:
    from reference_models.right_context import RightContextEncoder

    torch.manual_seed(0)
    model = RightContextEncoder().eval()
    x, lengths = torch.randn(2, 4, 6), torch.tensor([4, 3])
    out = model(x, lengths)
    # a shorter row's own padding is masked: it gives what it gives alone
    torch.testing.assert_close(out[1:2, :3], model(x[1:2, :3], lengths[1:2]))
    # a frame past the longest is right context: every row reads it
    wider = model(torch.cat([x, torch.zeros(2, 1, 6)], 1), lengths)
    assert not torch.allclose(wider[:, :4], out, atol=1e-5)


def test_noisy_hidden_draws_one_vector_per_call_in_its_own_dtype() -> None:
    from reference_models.noisy_hidden import NoisyHidden

    model = NoisyHidden().eval()
    x = torch.randn(1, 10).repeat(3, 1)
    torch.manual_seed(0)
    first = model(x)
    assert torch.equal(first[0], first[2])  # shared by the batch
    torch.manual_seed(0)
    assert torch.equal(model(x), first)  # seeded
    torch.manual_seed(1)
    assert not torch.equal(model(x), first)
    torch.manual_seed(0)
    double = model.double()(x.double())
    assert not torch.allclose(double, first.double(), atol=1e-4)  # float64 draws another stream


def test_the_translation_transformers_masks_keep_padding_and_the_future_out() -> None:
    from reference_models.translation_transformer import TranslationTransformer

    torch.manual_seed(0)
    model = TranslationTransformer().eval()
    src, tgt = torch.randint(0, 20, (5, 2)), torch.randint(0, 20, (4, 2))
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)  # True: may not attend (a later step)
    out = model(src, tgt, None, causal, None, None, None)
    later = tgt.clone()
    later[3] = (later[3] + 1) % 20
    # causal: the first three steps do not see the fourth target token
    torch.testing.assert_close(model(src, later, None, causal, None, None, None)[:3], out[:3])
    # source padding masked (and the memory's): what it holds does not matter
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[:, 4] = True
    masked = model(src, tgt, None, causal, padding, None, padding)
    other = src.clone()
    other[4] = (other[4] + 1) % 20
    torch.testing.assert_close(model(other, tgt, None, causal, padding, None, padding), masked)


def test_the_packed_seq2seq_never_reads_the_padding_of_its_source() -> None:
    from reference_models.packed_seq2seq import PackedSeq2Seq

    torch.manual_seed(0)
    model = PackedSeq2Seq(teacher_forcing=1.0).eval()
    src, trg = torch.randint(1, 20, (5, 2)), torch.randint(1, 20, (4, 2))
    src[3:, 1] = 0
    lengths = torch.tensor([5, 3])
    out = model(src, lengths, trg)
    longer = torch.cat([src, torch.zeros(2, 2, dtype=torch.long)])  # two more steps of the pad token
    torch.testing.assert_close(model(longer, lengths, trg), out)
    alone = model(src[:3, 1:], lengths[1:], trg[:, 1:])
    torch.testing.assert_close(alone, out[:, 1:])


def test_the_bag_classifier_reads_rows_as_bags_of_equal_length() -> None:
    from reference_models.bag_classifier import BagClassifier

    model = BagClassifier()
    text = torch.randint(0, 50, (3, 4))
    flat = model(text.flatten(), torch.tensor([0, 4, 8]))
    torch.testing.assert_close(model(text, None), flat)
    with pytest.raises(ValueError, match="offsets has to be None"):  # as dyncheck drew them before
        model(text, torch.randint(0, 50, (3, 4)))


def test_the_attention_decoder_decodes_each_sample_from_its_own_state() -> None:
    from reference_models.attention_decoder import AttentionDecoder

    torch.manual_seed(0)
    model = AttentionDecoder().eval()
    outputs, hidden = torch.randn(3, 4, 12), torch.randn(1, 3, 12)
    scores = model(outputs, hidden)
    assert scores.shape == (3, 5, 20)
    assert torch.allclose(scores.exp().sum(-1), torch.ones(3, 5))  # log-probabilities per step
    alone = model(outputs[1:2], hidden[:, 1:2])
    torch.testing.assert_close(alone, scores[1:2])
    with pytest.raises(RuntimeError):  # the state drawn [batch, time, hidden], as the encoder's outputs
        model(outputs, torch.randn(3, 4, 12))


@pytest.mark.parametrize("name", ["norm_encoder", "softmax_classifier"])
def test_the_sum_of_the_output_is_a_constant(name: str) -> None:
    torch.manual_seed(0)
    model, (x,) = BUILDERS[name]()
    sums = model(x).sum(-1)
    expected = model.encoder.norm.bias.sum() if name == "norm_encoder" else torch.tensor(1.0)
    assert torch.allclose(sums, expected.expand_as(sums), atol=1e-5)


def test_tensor_attribute_and_default_dtype_state_cannot_be_cast() -> None:
    from reference_models.buggy.default_dtype_state import Model as DefaultDtypeState
    from reference_models.buggy.tensor_attribute import Model as TensorAttribute

    for model in (TensorAttribute(4, 6, 2), DefaultDtypeState(4, 6, 2)):
        model(torch.randn(2, 4))  # float32 runs
        with pytest.raises(RuntimeError, match="same dtype"):
            model.double()(torch.randn(2, 4, dtype=torch.float64))
    assert TensorAttribute(4, 6, 2).double().centering.dtype == torch.float32


def test_straight_through_pool_values_are_the_max_over_valid_steps() -> None:
    from reference_models.buggy.straight_through_pool import Model as StraightThroughPool

    torch.manual_seed(0)
    model = StraightThroughPool(3, 5, 4)
    x, lengths = torch.randn(2, 4, 3), torch.tensor([2, 4])
    alone = model(x[:1, :2], lengths[:1])
    assert torch.allclose(model(x, lengths)[:1], alone, atol=1e-6)


# --- causal_attention ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["CausalSelfAttention", "RotarySelfAttention"])
def test_causal_attention_sees_only_the_past(name: str) -> None:
    from reference_models import causal_attention

    torch.manual_seed(0)
    model = getattr(causal_attention, name)()
    x = torch.randn(2, 5, 8)
    changed = x.clone()
    changed[:, 3:] += 1
    assert torch.equal(model(x)[:, :3], model(changed)[:, :3])
    assert not torch.allclose(model(x)[:, 3:], model(changed)[:, 3:])


def test_rotary_attention_tells_positions_apart() -> None:
    import copy

    from reference_models.causal_attention import CausalSelfAttention, RotarySelfAttention

    torch.manual_seed(0)
    model = RotarySelfAttention()
    x = torch.randn(2, 5, 8)
    # the same weights without the rotation: the first step (turned by angle 0, seeing only
    # itself) is the same, the later ones compare rotated queries and keys
    plain = CausalSelfAttention()
    plain.load_state_dict(model.state_dict(), strict=False)  # all but the rotation's frequencies
    torch.testing.assert_close(model(x)[:, 0], plain(x)[:, 0])
    assert not torch.allclose(model(x)[:, 1:], plain(x)[:, 1:])
    with pytest.raises(TypeError, match="staticmethod"):
        copy.deepcopy(model)
    # the frozen frequencies, used through a method: no gradient reaches them, the output moves with them
    before = model(x)
    with torch.no_grad():
        model.rotary.freqs.mul_(2.0)
    assert not model.rotary.freqs.requires_grad and not torch.allclose(model(x), before)


def test_causal_attention_at_length_one_ignores_queries_and_keys() -> None:
    from reference_models.causal_attention import CausalSelfAttention

    torch.manual_seed(0)
    model = CausalSelfAttention()
    x = torch.randn(2, 1, 8)
    before = model(x)
    with torch.no_grad():
        model.q_proj.weight.add_(1.0)
        model.k_proj.weight.mul_(-3.0)
    assert torch.equal(model(x), before)  # a softmax over one key is exactly 1


# --- causal_tcn ----------------------------------------------------------------------


def test_causal_tcn_sees_only_the_past_and_its_wrong_end_chomp_does_not() -> None:
    from reference_models.buggy.centred_conv import Model as CentredConv
    from reference_models.causal_tcn import CausalTCN

    torch.manual_seed(0)
    x = torch.randn(2, 9, 3)
    changed = x.clone()
    changed[:, 5:] += 1
    model = CausalTCN().eval()
    assert torch.equal(model(x)[:, :5], model(changed)[:, :5])
    assert not torch.allclose(model(x)[:, 5:], model(changed)[:, 5:])
    centred = CentredConv().eval()
    # two layers of kernel 2, dilations 1 and 2, centred: step 4 reads up to step 4 + 3
    assert not torch.allclose(centred(x)[:, 2:5], centred(changed)[:, 2:5])


# --- greedy_decoder ------------------------------------------------------------------


def _decoded_alone_and_together(model: torch.nn.Module) -> tuple[list[torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    model.eval()
    for _ in range(50):
        source = torch.randint(0, 4, (3, 4))
        alone = [model(source[i:i + 1])[0][0] for i in range(3)]
        if len({len(tokens) for tokens in alone}) > 1:
            return alone, model(source)[0]
    raise AssertionError("no batch whose samples decode to different lengths")


def test_greedy_decoder_pads_a_sample_past_its_end_and_the_buggy_one_cuts_the_others_short() -> None:
    from reference_models.buggy.any_ended_decoder import Model as AnyEnded
    from reference_models.greedy_decoder import END, PAD, GreedyDecoder

    torch.manual_seed(0)
    alone, together = _decoded_alone_and_together(GreedyDecoder())
    assert together.shape[1] == max(len(tokens) for tokens in alone)
    for row, tokens in enumerate(alone):
        assert torch.equal(together[row, :len(tokens)], tokens)
        assert (together[row, len(tokens):] == PAD).all()
        assert tokens[-1] == END or len(tokens) == together.shape[1]
    torch.manual_seed(0)
    alone, together = _decoded_alone_and_together(AnyEnded())
    assert together.shape[1] == min(len(tokens) for tokens in alone)  # stopped at the first end


# --- unrolled_cell -------------------------------------------------------------------


def test_unrolled_cell_holds_each_rows_state_at_its_end_and_the_buggy_one_reads_the_padding() -> None:
    from reference_models.buggy.unheld_cell_state import Model as Unheld
    from reference_models.unrolled_cell import UnrolledGRU

    torch.manual_seed(0)
    x, lengths = torch.randn(2, 5, 6), torch.tensor([5, 2])
    changed = x.clone()
    changed[1, 2:] += 1  # only row 1's padding
    model = UnrolledGRU().eval()
    outputs, state = model(x, lengths)
    assert torch.equal(state[1], model(x[1:, :2], lengths[1:])[1][0])  # the state at its length
    assert (outputs[1, 2:] == 0).all()
    assert torch.equal(model(changed, lengths)[1], state)
    unheld = Unheld().eval()
    assert not torch.allclose(unheld(changed, lengths)[1][1], unheld(x, lengths)[1][1])


# --- loop_moe ------------------------------------------------------------------------


def test_loop_moe_calls_every_expert_on_its_slice_empty_or_not() -> None:
    from reference_models.loop_moe import LoopMoE

    torch.manual_seed(0)
    model = LoopMoE(8, 6, 2)
    x = torch.randn(2, 8)
    rows: dict[int, int] = {}
    for index, expert in enumerate(model.experts):
        expert.register_forward_hook(lambda m, args, out, index=index: rows.__setitem__(index, args[0].shape[0]))
    model(x)
    assert sorted(rows) == [0, 1, 2, 3]  # all four called
    assert sum(rows.values()) == 2 and 0 in rows.values()  # two rows, so some slices are empty


# --- top1_softmax_router -------------------------------------------------------------


def test_top1_softmax_router_decides_the_routing_but_gets_zero_gradient() -> None:
    from reference_models.buggy.top1_softmax_router import Model

    torch.manual_seed(0)
    model = Model(8, 6, 2)
    x = torch.randn(6, 8)
    model(x).sum().backward()
    assert model.router.weight.grad is not None and not model.router.weight.grad.any()
    before = model(x)
    with torch.no_grad():
        model.router.weight.neg_()
    assert not torch.allclose(model(x), before)  # other experts chosen


# --- early exit ----------------------------------------------------------------------


def _leaves_called(model: torch.nn.Module, x: torch.Tensor) -> list[str]:
    called: list[str] = []
    handles = [
        module.register_forward_pre_hook(lambda _m, _a, name=name: called.append(name))
        for name, module in model.named_modules()
        if name and not any(True for _ in module.children())
    ]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return called


def test_early_exit_runs_every_block_in_training_and_stops_early_in_eval() -> None:
    from reference_models.early_exit import EarlyExitNet

    torch.manual_seed(0)
    model = EarlyExitNet()
    confident = torch.full((2, 8), 1e3)  # saturated logits: the first exit is sure
    every_leaf = ["embed", *[name for i in range(3) for name in (f"blocks.{i}.0", f"blocks.{i}.1", f"exits.{i}")]]
    assert _leaves_called(model.train(), confident) == every_leaf
    assert _leaves_called(model.eval(), confident) == every_leaf[:4]
    # In eval a sample's output is its own, whatever else is in the batch.
    batch = torch.cat([confident[:1], torch.zeros(1, 8)])
    with torch.no_grad():
        together = model.eval()(batch)
        alone = torch.cat([model(batch[:1]), model(batch[1:])])
    torch.testing.assert_close(together, alone)


# --- spiking -------------------------------------------------------------------------


def test_spiking_net_keeps_each_sample_to_itself_and_learns_through_its_spikes() -> None:
    from reference_models.spiking import LeakySNN

    torch.manual_seed(0)
    model = LeakySNN()
    data = torch.randn(6, 3, 8) * 3  # [time, batch, features]
    spikes, membranes = model(data)
    assert spikes.shape == membranes.shape == (6, 3, 4) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    for i in range(3):  # a sample's steps alone give its column of the batch's
        alone = model(data[:, i:i + 1])
        torch.testing.assert_close(alone[1], membranes[:, i:i + 1])
    # read as vectors, the loop walks the batch as time: sample 1 then depends on sample 0
    vectors = data[0]
    assert not torch.allclose(model(vectors)[1][1], model(vectors[1:2])[1][0])
    membranes.sum().backward()  # the surrogate gradient reaches the first layer
    assert model.fc1.weight.grad.abs().sum() > 0


def test_spiking_layers_keep_the_last_membrane_in_a_buffer_no_call_reads() -> None:
    from reference_models.buggy.carried_membrane import Model as Carried
    from reference_models.spiking import LeakyLayerSNN, LeakySNN

    torch.manual_seed(0)
    model, plain = LeakyLayerSNN(), LeakySNN()
    plain.load_state_dict(model.state_dict())  # the same weights; the buffers are not in it
    assert "lif1.mem" not in model.state_dict()
    data = torch.randn(5, 3, 8) * 3
    first = model(data)
    torch.testing.assert_close(first, plain(data))  # the same network as LeakySNN
    assert model.lif2.mem.shape == (3, 4)  # the last step's membrane, written by the call
    torch.testing.assert_close(model(data), first)  # and read by no later call
    carried = Carried()
    carried.load_state_dict(model.state_dict())
    once = carried(data)
    torch.testing.assert_close(once, first)
    assert not torch.allclose(carried(data)[1], once[1])  # the bug: the next call starts from it


def test_reset_spiking_neurons_start_each_call_from_rest_and_a_registry_misses_copies() -> None:
    import copy

    from reference_models.buggy.registry_reset import Model as Registered
    from reference_models.spiking import LeakySNN, ResetLeakySNN

    torch.manual_seed(0)
    model, plain = ResetLeakySNN(), LeakySNN()
    plain.load_state_dict(model.state_dict())
    data = torch.randn(5, 3, 8) * 3
    with torch.no_grad():  # a membrane kept from a call with grad is no graph leaf: deepcopy refuses it
        first = model(data)
        torch.testing.assert_close(first[1], plain(data)[1])  # the same network as LeakySNN
        torch.testing.assert_close(copy.deepcopy(model)(data), first)
        torch.testing.assert_close(model(data), first)
        registered = Registered()
        registered.load_state_dict(model.state_dict())
        torch.testing.assert_close(registered(data), first)
        torch.testing.assert_close(registered(data), first)  # reset through the class's list
        twin = copy.deepcopy(registered)
        assert not torch.allclose(twin(data)[1], first[1])  # the bug: no list holds the copy's neurons


# --- multi_scale ---------------------------------------------------------------------


def test_multi_scale_takes_each_index_of_its_scales_and_none_past_them() -> None:
    from reference_models.multi_scale import MultiScaleClassifier

    model = MultiScaleClassifier()
    x = torch.randn(2, 3, 8, 8)
    outputs = [model(x, scale) for scale in range(3)]
    assert all(o.shape == (2, 5) for o in outputs) and not torch.allclose(outputs[0], outputs[2])
    with pytest.raises(IndexError):
        model(x, 3)


# --- adapter_mixture -----------------------------------------------------------------


def test_each_sample_runs_its_own_adapter_and_the_buggy_one_the_first_samples() -> None:
    from reference_models.adapter_mixture import AdapterMixture
    from reference_models.buggy.first_adapter import Model as FirstAdapter

    torch.manual_seed(0)
    x, ids = torch.randn(3, 12), torch.tensor([0, 2, 1])
    for model, alone_agrees in ((AdapterMixture(), True), (FirstAdapter(), False)):
        together = model(x, ids)
        alone = torch.cat([model(x[i:i + 1], ids[i:i + 1]) for i in range(3)])
        assert torch.allclose(together, alone, atol=1e-6) is alone_agrees
    with pytest.raises(IndexError):
        AdapterMixture()(x, torch.tensor([0, 3, 1]))  # three adapters


def test_parameter_token_tabular_weighs_each_continuous_column_by_its_own_weights() -> None:
    from reference_models.tabular import ParameterTokenTabular

    model = ParameterTokenTabular()
    x_cont, x_cat = torch.randn(3, 5), torch.tensor([[0, 1], [2, 3], [1, 0]])
    out = model(x_cont, x_cat)
    assert out.shape == (3, 3)
    out.sum().backward()
    assert model.cont_tokens.weight.grad is not None and model.cont_tokens.weight.grad.shape == (5, 8)


def test_tokenized_tabular_takes_each_kind_of_column_through_its_own_module() -> None:
    from reference_models.tabular import TokenizedTabular

    model = TokenizedTabular()
    x_cont, x_cat = torch.randn(2, 5), torch.tensor([[0, 3], [2, 1]])  # cardinalities 3 and 4
    assert model(x_cont, x_cat).shape == (2, 3)
    with pytest.raises(ValueError):
        model(x_cont, torch.tensor([[0], [1]]))  # one column of two
    model.cat_tokens = None  # a model without categorical columns skips its pair
    assert model(x_cont, None).shape == (2, 3)


# --- carried_memory ------------------------------------------------------------------


def test_carried_memory_takes_8_features_and_16_of_memory_and_a_reset_ignores_it() -> None:
    from reference_models.carried_memory import CarriedMemory

    model = CarriedMemory()
    x = torch.randn(2, 8)
    out, memory = model(x, torch.randn(2, 16), False)
    assert out.shape == (2, 4) and memory.shape == (2, 16)
    torch.testing.assert_close(model(x, torch.randn(2, 16), True)[0], model(x, torch.zeros(2, 16), False)[0])
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 12), torch.randn(2, 12), False)  # the even split


# --- smoothed_loss -------------------------------------------------------------------


def test_smoothed_loss_is_cross_entropy_against_the_smoothed_targets() -> None:
    from reference_models.smoothed_loss import LabelSmoothedClassifier

    model = LabelSmoothedClassifier()
    x, targets = torch.randn(3, 12), torch.tensor([0, 4, 2])
    logits, loss = model(x, targets)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, targets, label_smoothing=0.125))
    with pytest.raises(RuntimeError):
        model(x, torch.tensor([0, 5, 2]))  # five classes


# --- topk_attention ------------------------------------------------------------------


def test_topk_attention_keeps_each_sequence_to_itself_and_k_keys_a_query() -> None:
    from reference_models.topk_attention import TopKAttention

    torch.manual_seed(0)
    model = TopKAttention()
    x = torch.randn(3, 6, 8)
    together = model(x)
    for i in range(3):
        torch.testing.assert_close(model(x[i:i + 1]), together[i:i + 1])
    # vectors: the scores compare the samples of the batch, which then depend on each other
    vectors = x[:, 0]
    assert not torch.allclose(model(vectors)[:1], model(vectors[:1]))
