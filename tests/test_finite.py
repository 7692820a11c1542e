"""finite: NaN/inf outputs and gradients, named; messages pinned."""

from __future__ import annotations

import re

import pytest

NAN_OUTPUT = "reference_models.buggy.nan_output:Model"
NAN_GRADIENT = "reference_models.buggy.nan_gradient:Model"


def test_nan_output_message(dyncheck_run):
    run = dyncheck_run("--dyncheck", NAN_OUTPUT, "--dyncheck-seed=2", "--dyncheck-invariants=finite")
    lines = run.failure("::finite").strip().splitlines()
    assert lines[0] == f"finite violated by {NAN_OUTPUT}"
    assert lines[2] == "The model produced NaN/inf outputs for an input the spec allows."
    assert re.fullmatch(r"  output: 4 / 4 non-finite \(4 NaN\), first at index \(0, 0\)", lines[3])
    # Where the first NaN was made: the op, the model's line, its finite inputs.
    assert re.fullmatch(
        r"  first NaN/inf made by Tensor\.div at \S*reference_models/buggy/nan_output\.py:34: `h = h / "
        r"h\.norm\(dim=-1, keepdim=True\)  # BUG: no epsilon, 0 / 0 for a zero row`, from finite inputs "
        r"\[1, 6\], \[1, 1\] = 0",
        lines[4],
    ), lines[4]
    assert re.fullmatch(r"  example:  x float32\[1, 8\] all zero, control=tensor\(\[0\.5\]\), seed=0", lines[5])
    assert lines[-1] == f"Reproduce: pytest --dyncheck {NAN_OUTPUT} --dyncheck-only --dyncheck-seed=2 -k finite"


EMPTY_MEAN = """
import torch
from torch import nn
from dyncheck.strategies import tensors


class Model(nn.Module):
    \"\"\"A next-token loss over tgt[:, 1:], which a one-token target leaves empty.\"\"\"

    __dyncheck__ = {"inputs": {"tgt": tensors(shape=("batch", "time", 4))}}

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, tgt):
        predicted = self.fc(tgt[:, :-1])
        return ((predicted - tgt[:, 1:]) ** 2).mean()
"""


def test_a_nan_from_a_mean_over_nothing_says_so(dyncheck_run, pytester):
    pytester.makepyfile(empty_mean=EMPTY_MEAN)
    run = dyncheck_run("--dyncheck", "empty_mean:Model", "--dyncheck-invariants=finite", "--dyncheck-max-examples=5")
    text = run.failure("::finite")
    assert (
        "  first NaN/inf made by Tensor.mean at empty_mean.py:17: `return ((predicted - tgt[:, 1:]) ** 2).mean()`, "
        "from finite inputs [1, 0, 4]: an empty tensor (a mean over no elements is NaN; a size this small may be "
        "one the model does not take: give its range in Spec(dims=...))" in text
    ), text


MASKED = """
import torch
from torch import nn
from dyncheck.strategies import tensors


class Policy(nn.Module):
    # an RL policy's logits, masked actions filled with -inf for the caller's Categorical
    def __init__(self):
        super().__init__()
        self.pi = nn.Linear(8, 5)

    def forward(self, obs, action_mask):
        return self.pi(obs).masked_fill(action_mask == 0, float("-inf"))


class LogProbs(Policy):
    # the same -inf through a log of zero probabilities: not a fill, reported
    def forward(self, obs, action_mask):
        return torch.log(torch.softmax(self.pi(obs), -1) * action_mask)


MASK = tensors(shape=("batch", 5), dtype=torch.int64, min_value=0, max_value=1)
Policy.__dyncheck__ = LogProbs.__dyncheck__ = {"inputs": {"obs": tensors(shape=("batch", 8)), "action_mask": MASK}}
"""


def test_minus_inf_a_fill_makes_on_purpose_is_not_reported(dyncheck_run, pytester):
    pytester.makepyfile(masked=MASKED)
    run = dyncheck_run(
        "--dyncheck", "masked:Policy", "--dyncheck", "masked:LogProbs", "--dyncheck-invariants=finite", "-v",
        "--dyncheck-seed=1",
    )
    assert run.outcomes() == {
        "dyncheck::masked:Policy::finite": "PASSED", "dyncheck::masked:LogProbs::finite": "FAILED",
    }, run.text
    assert re.search(
        r"-inf outputs made on purpose on \d+ examples? \(masked logits: Tensor\.masked_fill at \S*masked\.py:\d+: "
        r"`return self\.pi\(obs\)\.masked_fill\(action_mask == 0, float\(\"-inf\"\)\)`\): not reported",
        run.text,
    ), run.text
    assert "first NaN/inf made by log at " in run.failure("masked:LogProbs::finite")


def test_unwritten_memory_is_no_op_that_made_a_nan():
    # torch.empty_strided (called inside torch for an empty batch) returns memory as it was:
    # a NaN there is left over, not made, and the search goes on to the op that makes one.
    import torch

    from dyncheck.invariants.finite import _FirstNonFinite

    finder = _FirstNonFinite()
    nan = torch.tensor([float("nan")])
    for unwritten in (torch.empty_strided, torch.empty, torch.empty_like, torch.Tensor.new_empty):
        finder._look(unwritten, ((1,), (1,)), {}, nan)
    assert finder.found is None
    finder._look(torch.div, (torch.zeros(1), torch.zeros(1)), {}, nan)
    assert finder.found is not None and finder.found.startswith("first NaN/inf made by div")


def test_nan_gradient_names_the_parameter(dyncheck_run):
    run = dyncheck_run("--dyncheck", NAN_GRADIENT, "--dyncheck-seed=2", "--dyncheck-invariants=finite")
    lines = run.failure("::finite").strip().splitlines()
    assert lines[2].startswith("The outputs are finite but backward produced NaN/inf gradients")
    assert re.fullmatch(r"  fc1\.weight\.grad: \d+ / 48 non-finite \(\d+ NaN\), first at index \(\d+, \d+\)", lines[3])


def test_crash_keeps_the_models_traceback_and_explains_the_tie(dyncheck_run):
    target = "reference_models.buggy.shared_original:SharedNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=finite")
    text = run.failure("::finite")
    assert f"finite: {target} raised in forward" in text
    assert "The model raised RuntimeError on an example the spec allows: mat1 and mat2 shapes cannot be multiplied" in text
    assert (
        "    layers.hidden.weight (the same Parameter as layers.input.weight and layers.output.weight) "
        "has shape [6, 8], but layers.hidden is Linear(in_features=6, out_features=6, bias=True) and needs [6, 6]: "
        "a weight can only be tied between layers of the same shape"
    ) in text
    assert "The model's traceback:" in text
    assert "shared_original.py" in text and "in forward" in text
    assert "dyncheck/invariants" not in text  # dyncheck's own frames are not shown


def test_one_crash_in_every_check_shows_its_traceback_once(dyncheck_run):
    # A model that crashes on what was drawn fails every check alike: the first report
    # shows the model's traceback, the others point to it.
    target = "reference_models.buggy.shared_original:SharedNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=determinism,finite,purity", "-p", "no:xdist")
    reports = [run.failure(f"::{name}") for name in ("determinism", "finite", "purity")]
    assert "The model's traceback:\n" in reports[0] and "shared_original.py" in reports[0]
    for text in reports[1:]:
        assert "The model's traceback: as in determinism's report." in text and "shared_original.py" not in text
        assert "Reproduce: pytest --dyncheck" in text  # each still repeats itself


def test_an_expected_crash_does_not_take_the_traceback_from_the_reports_shown(dyncheck_run, pytester):
    # determinism declared a known failure: its report is not shown, so finite's is the first
    pytester.makepyfile(known="""
        import dyncheck
        from reference_models.buggy.shared_original import SharedNet

        spec = dyncheck.Spec(SharedNet, xfail={"determinism": "the founding model's own crash"})
    """)
    run = dyncheck_run("--dyncheck", "known:spec", "--dyncheck-invariants=determinism,finite", "-p", "no:xdist")
    assert run.outcomes()["dyncheck::known:spec::determinism"] == "XFAIL", run.text
    assert "The model's traceback:\n" in run.failure("::finite")


# --- an innocent NaN gradient: normalisation layers that saw a constant input ---------------

DEEP_NORM = "reference_models.deep_norm:DeepNormNet"
BEHIND_NORMS = "reference_models.buggy.nan_gradient_behind_norms:Model"


def _zero_images(target: str):
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.target import resolve

    return Context(resolve(target)), Example({"x": torch.zeros(2, 3, 4, 4)}, 0, {"batch": 2})


def test_constant_norms_overflow_is_the_examples_not_the_models():
    from dyncheck.invariants.finite import Finite
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.norms import constant_norm_overflow, non_finite_gradients

    context, example = _zero_images(DEEP_NORM)
    # The example does overflow the model's gradients (tests/test_reference_models_plain.py
    # shows it in plain PyTorch too) ...
    model = context.fresh_model()
    context.run(model, example, backward=True, record=False)
    assert non_finite_gradients(model)
    reason = constant_norm_overflow(context, example)
    assert reason == (
        "24 normalisation layers (blocks.0.0, blocks.1.0, blocks.2.0 and 21 more) normalised a constant input "
        "(variance 0: identical or all-zero inputs) and backward overflowed; with their eps raised to 1 every "
        "gradient is finite"
    )
    # ... and neither check calls it a fault: they note it.
    for check in (Finite(), GradIsolation()):
        with context.counting():
            check.check(context, example)
        assert context.report["notes"] == [f"gradients not judged on 1 example: {reason}"]
        context.report.clear()
        context.memo.clear()


def test_a_nan_that_raising_eps_leaves_is_the_models():
    from dyncheck.errors import InvariantViolation
    from dyncheck.invariants.finite import Finite
    from dyncheck.norms import constant_norm_overflow

    context, example = _zero_images(BEHIND_NORMS)
    # Its BatchNorms saw constant inputs too, but the sqrt at 0 behind them is NaN still.
    assert constant_norm_overflow(context, example) is None
    with pytest.raises(InvariantViolation, match="backward produced NaN/inf gradients"):
        Finite().check(context, example)


def _constant_channel(model_class):
    import torch

    from dyncheck import Spec
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.target import resolve_spec

    x = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    x[:, 0] = 0.5  # one channel flat over the batch and the image, the others not
    return Context(resolve_spec(Spec(model_class))), Example({"x": x}, 0, {"batch": 3})


def test_norms_that_saw_a_constant_channel_overflow_and_only_through_it():
    # Raising eps to 1 moves the channels that vary too, so it cannot tell; scaling the
    # norms' backward as eps 1 would, the forward unchanged, leaves every gradient finite
    # (timm's MobileOne on two all-zero 1x4 images and a third).
    from dyncheck.invariants.finite import Finite
    from dyncheck.norms import constant_norm_overflow, non_finite_gradients
    from reference_models.depthwise_norm import DepthwiseNormNet

    context, example = _constant_channel(DepthwiseNormNet)
    model = context.fresh_model()
    context.run(model, example, backward=True, record=False)
    assert non_finite_gradients(model)
    assert constant_norm_overflow(context, example) == (
        "24 normalisation layers (blocks.0.0, blocks.1.0, blocks.2.0 and 21 more) normalised an input with constant "
        "groups (variance 0 in some channels or rows) and backward overflowed; with every normalisation layer's "
        "backward scaled as eps 1 would scale it (the forward unchanged), every gradient is finite"
    )
    with context.counting():
        Finite().check(context, example)


def test_a_nan_behind_norms_that_saw_a_constant_channel_is_the_models():
    import torch

    from dyncheck.errors import InvariantViolation
    from dyncheck.invariants.finite import Finite
    from dyncheck.norms import constant_norm_overflow
    from reference_models.depthwise_norm import DepthwiseNormNet

    class RootOfSquares(DepthwiseNormNet):
        """The pooled features through sqrt(z**2): at the flat channel's 0, a NaN gradient
        in every dtype."""

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(torch.sqrt(x.mean((2, 3)) ** 2))

    context, example = _constant_channel(RootOfSquares)
    assert constant_norm_overflow(context, example) is None
    with pytest.raises(InvariantViolation, match="backward produced NaN/inf gradients"):
        Finite().check(context, example)


def test_an_overflow_elsewhere_beside_a_norm_that_saw_a_constant_channel_is_the_models():
    # Beside a BatchNorm with one flat channel, a unit normalisation with eps 1e-40 divides an
    # all-zero row by 1e-40: inf in float32, finite in float64. Only the norms' backward is
    # scaled, so the overflow stays and is reported.
    import torch
    from torch import nn

    from dyncheck.errors import InvariantViolation
    from dyncheck.invariants.finite import Finite
    from dyncheck.norms import constant_norm_overflow

    class TinyEps(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn, self.lin, self.head = nn.BatchNorm1d(4), nn.Linear(4, 4, bias=False), nn.Linear(4, 3)

        def forward(self, x):
            v = self.lin(x)
            return self.head(self.bn(x) + v / (v.norm(dim=-1, keepdim=True) + 1e-40))

    context, example = _constant_channel(TinyEps)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    x[:, 0], x[1] = 0.0, 0.0
    example = type(example)({"x": x}, 0, {"batch": 3})
    assert constant_norm_overflow(context, example) is None
    with pytest.raises(InvariantViolation, match="backward produced NaN/inf gradients"):
        Finite().check(context, example)


def test_the_summary_counts_the_examples_whose_gradients_were_not_judged(dyncheck_run):
    run = dyncheck_run("--dyncheck", DEEP_NORM, "--dyncheck-seed=3", "--dyncheck-invariants=finite,grad_isolation")
    assert run.ret == 0, run.text
    notes = re.findall(r"gradients not judged on (\d+) examples?(?::|; on the last,) 24 normalisation layers", run.text)
    assert len(notes) == 2 and all(int(n) > 0 for n in notes), run.text


def _norm_layers():
    import torch

    class LlamaRMSNorm(torch.nn.Module):  # Hugging Face's copies keep eps as variance_epsilon
        def __init__(self, size):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(size))
            self.variance_epsilon = 1e-6

        def forward(self, x):
            return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)

    class T5LayerNorm(LlamaRMSNorm):  # an RMSNorm by another name
        pass

    constant_rows = torch.ones(2, 4, 3, 3)  # every channel constant over batch and space
    return [
        pytest.param(torch.nn.BatchNorm2d(4), constant_rows, id="batch-norm"),
        pytest.param(torch.nn.InstanceNorm2d(4), constant_rows, id="instance-norm"),
        pytest.param(torch.nn.GroupNorm(2, 4), constant_rows, id="group-norm"),
        pytest.param(torch.nn.LayerNorm(3), constant_rows, id="layer-norm"),
        pytest.param(torch.nn.RMSNorm(3), torch.zeros(2, 3), id="rms-norm"),
        pytest.param(LlamaRMSNorm(3), torch.zeros(2, 3), id="llama-rms-norm"),
        pytest.param(T5LayerNorm(3), torch.zeros(2, 3), id="t5-layer-norm"),
    ]


@pytest.mark.parametrize(("layer", "constant"), _norm_layers())
def test_each_kind_of_normalisation_layer_is_seen_normalising_a_constant_input(layer, constant):
    import torch

    from dyncheck.norms import constant_norms

    model = torch.nn.Sequential(layer)
    with constant_norms(model) as found:
        model(constant)
        model(torch.randn(constant.shape) * (1.0 + torch.arange(constant.numel()).reshape(constant.shape)))
    assert list(found) == ["0"]
    with constant_norms(model) as found:
        model(torch.randn(constant.shape))
    assert found == {}


def test_a_batch_norm_in_eval_mode_normalises_by_its_running_statistics():
    import torch

    from dyncheck.norms import constant_norms

    model = torch.nn.Sequential(torch.nn.BatchNorm2d(4)).eval()
    with constant_norms(model) as found:
        model(torch.zeros(2, 4, 3, 3))
    assert found == {}


EMPTY_SUM = """
import torch
from torch import nn
from dyncheck.strategies import tensors


class Model(nn.Module):
    '''A next-token loss as a masked mean: the sum over tgt[:, 1:] divided by its count.'''

    __dyncheck__ = {"inputs": {"tgt": tensors(shape=("batch", "time", 4))}}

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, tgt):
        error = (self.fc(tgt[:, :-1]) - tgt[:, 1:]) ** 2
        return error.sum() / torch.tensor(float(error.numel()))
"""


def test_a_nan_from_nothing_over_nothing_says_so(dyncheck_run, pytester):
    pytester.makepyfile(empty_sum=EMPTY_SUM)
    run = dyncheck_run("--dyncheck", "empty_sum:Model", "--dyncheck-invariants=finite", "--dyncheck-max-examples=5")
    text = run.failure("::finite")
    assert "from finite inputs [] = 0, [] = 0: 0 / 0, a sum over no elements divided by their count" in text, text


def test_nan_only_large_inputs_make_names_their_range(dyncheck_run, pytester):
    # pytorch/examples' VAE samples with exp(0.5 * logvar), which overflows at the inputs of
    # 1e3 dyncheck draws by default; its pixels are in [0, 1]. The report says so, with the Spec.
    pytester.makepyfile(vae="""
        import torch
        import torch.nn.functional as F
        from torch import nn

        class VAE(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc21, self.fc22 = nn.Linear(16, 8), nn.Linear(8, 2), nn.Linear(8, 2)
                self.fc3, self.fc4 = nn.Linear(2, 8), nn.Linear(8, 16)

            def forward(self, x):
                h1 = F.relu(self.fc1(x))
                mu, logvar = self.fc21(h1), self.fc22(h1)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
                return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar
        """)
    run = dyncheck_run("--dyncheck", "vae:VAE", "--dyncheck-invariants=finite", "--dyncheck-seed=5")
    text = run.failure("::finite")
    assert re.search(
        r"  large inputs: x reaches \S+ here, and with the large inputs scaled to magnitude 1 the outputs are finite\. If "
        r"the model's inputs are bounded \(pixels in \[0, 1\], normalised features\), say so: "
        r"Spec\(inputs=\{'x': tensors\(shape=\.\.\., min_value=\.\.\., max_value=\.\.\.\)\}\)", text,
    ), text


def test_a_nan_at_any_scale_gets_no_range_hint(dyncheck_run):
    target = "reference_models.buggy.nan_output:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=finite")
    assert "large inputs:" not in run.failure("::finite")


def test_a_row_of_padding_only_says_so_and_the_spec_that_keeps_it_out(dyncheck_run, pytester):
    # ESM-2 averages over the tokens that are not its pad id: a row of only that id is 0 / 0.
    # The message blamed a small size; the cause is the token value.
    pytester.makepyfile(pad_mean="""
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.fc = nn.Embedding(10, 4, padding_idx=1), nn.Linear(4, 2)

            def forward(self, tokens):
                keep = (tokens != 1).unsqueeze(-1).float()
                return self.fc((self.emb(tokens) * keep).sum(1) / keep.sum(1))
        """)
    run = dyncheck_run("--dyncheck", "pad_mean:Model", "--dyncheck-invariants=finite", "--dyncheck-seed=1")
    assert (
        "  every token of tokens is 1, an Embedding's padding_idx: a sequence of padding only. If the model finds its "
        "padding by that id and is never given such a row, declare Spec(padding_value=1): no check then draws the pad "
        "id as a token"
    ) in run.text.splitlines(), run.text


def test_a_row_of_padding_only_in_eval_mode_says_so_too(dyncheck_run, pytester):
    # SASRec's key padding mask is ids == 0: a row of only the pad id masks every key, NaN on
    # torch's fused inference path only. The eval-only message left out the Spec that fixes it.
    pytester.makepyfile(pad_keys="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.items = nn.Embedding(30, 8, padding_idx=0)
                layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
                self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)

            def forward(self, item_seq):
                return self.encoder(self.items(item_seq), src_key_padding_mask=item_seq == 0)[:, -1]
        """)
    run = dyncheck_run("--dyncheck", "pad_keys:Model", "--dyncheck-invariants=finite", "--dyncheck-seed=1")
    text = run.failure("::finite")
    assert "NaN/inf outputs in eval mode without autograd" in text, run.text
    assert (
        "  every token of item_seq is 0, an Embedding's padding_idx: a sequence of padding only. If the model finds "
        "its padding by that id and is never given such a row, declare Spec(padding_value=0): no check then draws the "
        "pad id as a token"
    ) in text.splitlines(), text
