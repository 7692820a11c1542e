"""Paths on one line: a forty-module model's paths are told by what varies between them,
in the summary and in failure messages; a small model's path is shown in full."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
from torch import nn

from dyncheck.paths import WIDTH, Layout, PathSet, chain, describe

#: A four-layer decoder (39 leaf modules) with LayerDrop: in training each block is skipped
#: with probability 1/2, drawn from torch's RNG; in eval every block runs. Its attention is
#: linear (no softmax over one key), so every module that runs influences the output.
DECODER = '''
import torch
import torch.nn as nn
import dyncheck


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = torch.sigmoid(self.q_proj(x)), torch.sigmoid(self.k_proj(x)), self.v_proj(x)
        return self.out_proj(q * torch.cumsum(k * v, dim=1) / torch.cumsum(k, dim=1))


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.fc_in = nn.Linear(dim, 2 * dim)
        self.act = nn.GELU()
        self.fc_out = nn.Linear(2 * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.fc_out(self.act(self.fc_in(self.ln_2(x))))


class Decoder(nn.Module):
    def __init__(self, vocab_size=16, dim=8, num_layers=4, layerdrop=0.5):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.layers = nn.ModuleList(Block(dim) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)
        self.layerdrop = layerdrop

    def draw(self):
        return torch.rand(())

    def forward(self, input_ids):
        x = self.embed(input_ids)
        for layer in self.layers:
            if self.training and self.draw() < self.layerdrop:
                continue
            x = layer(x)
        return self.head(self.norm(x))


GENERATOR = torch.Generator().manual_seed(0)


class OwnGenerator(Decoder):
    """A bug: LayerDrop drawn from a generator of the module's own, which dyncheck does not
    seed, so the same example takes another path on the next call."""

    def draw(self):
        return torch.rand((), generator=GENERATOR)


spec = dyncheck.Spec(Decoder, dims={"time": (2, 5)})
unseeded = dyncheck.Spec(OwnGenerator, dims={"time": (2, 5)})
'''


def _decoder() -> nn.Module:
    namespace: dict = {}
    exec(compile(DECODER, "<decoder>", "exec"), namespace)
    return namespace["Decoder"]()


@pytest.fixture(scope="module")
def layout() -> Layout:
    return Layout.of(_decoder())


def _block(index: int) -> list[str]:
    names = ("ln_1", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj", "ln_2", "fc_in", "act", "fc_out")
    return [f"layers.{index}.{name}" for name in names]


def _path(*kept: int) -> tuple[str, ...]:
    return ("embed", *[name for i in kept for name in _block(i)], "norm", "head")


LAYERDROP = [_path(0, 1, 2, 3), _path(0, 2), _path(1), _path(), _path(0, 1, 3), _path(2, 3)]


def test_the_decoder_has_39_leaf_modules(layout):
    assert len(layout.leaves) == 39
    assert layout.lists == {"layers"}
    assert layout.leaf_path(["layers.0", "layers.0.attn", "layers.0.attn.q_proj"]) == ("layers.0.attn.q_proj",)


def test_layerdrop_paths_are_told_by_the_blocks_they_skip(layout):
    paths = PathSet(LAYERDROP, layout)
    assert paths.outline() == "embed → layers.0-3 → norm → head (39 modules)"
    assert paths.differences() == "layers.0-3"
    assert [paths.describe(p) for p in LAYERDROP] == [
        "all 39 modules",
        "layers.1, layers.3 skipped",
        "layers.0, layers.2-3 skipped",
        "layers.0-3 skipped",
        "layers.2 skipped",
        "layers.0-1 skipped",
    ]


def test_one_path_is_all_modules_in_outline(layout):
    assert describe(_path(0, 1, 2, 3), layout) == "all 39 modules (embed → layers.0-3 → norm → head)"
    assert describe(_path(0, 2, 3), layout) == "30 of 39 modules (embed → layers.0 → layers.2-3 → norm → head)"
    # A path given with its containers (as the call recorder sees it) reads the same.
    with_containers = ("embed", *[n for i in range(4) for n in (f"layers.{i}", f"layers.{i}.attn", *_block(i))])
    assert describe((*with_containers, "norm", "head"), layout).startswith("all 39 modules (")


def test_routing_is_told_by_the_experts_that_ran():
    paths = [("router", "experts.2", "experts.0", "head"), ("router", "experts.1", "experts.3", "head"),
             ("router", "experts.0", "experts.2", "head"), ("router", "head")]
    described = PathSet(paths, width=30).describe_all()
    assert described == {
        paths[0]: "only experts.2 → experts.0",
        paths[1]: "only experts.1 → experts.3",
        paths[2]: "only experts.0 → experts.2",
        paths[3]: "experts.0-3 skipped",
    }
    assert PathSet(paths, width=30).outline() == "router → experts.0-3 → head (6 modules)"


def test_paths_that_differ_in_order_only_are_told_by_their_order():
    paths = [("router", "experts.1", "experts.0", "head"), ("router", "experts.0", "experts.1", "head")]
    described = PathSet(paths, width=30)
    assert described.differences() == "experts.0-1"
    assert described.describe_all() == {paths[0]: "experts.1 → experts.0", paths[1]: "experts.0-1"}


def test_adaptive_depth_is_told_by_its_repeats():
    def halting(times: int) -> tuple[str, ...]:
        return ("embed", *["block.attn", "block.mlp", "block.halt"] * times, "head")

    described = PathSet([halting(n) for n in (1, 2, 3)], width=30).describe_all()
    assert [described[halting(n)] for n in (1, 2, 3)] == ["block", "block ×2", "block ×3"]


def test_a_sequential_block_is_named_whole():
    model = nn.Sequential()
    model.embed = nn.Linear(2, 2)
    model.blocks = nn.ModuleList(nn.Sequential(nn.Linear(2, 2), nn.ReLU()) for _ in range(3))
    leaves = ("embed", *[f"blocks.{i}.{j}" for i in range(3) for j in range(2)])
    assert describe(leaves, Layout.of(model), width=40) == "all 7 modules (embed → blocks.0-2)"


def test_small_models_keep_their_full_paths():
    paths = PathSet([("fc1", "fc3"), ("fc1", "fc2", "fc3")])
    assert paths.full
    assert paths.describe_all() == {("fc1", "fc2", "fc3"): "fc1 → fc2 → fc3", ("fc1", "fc3"): "fc1 → fc3"}
    assert chain(("input_layer", "hidden_layer", "hidden_layer", "output_layer")) == (
        "input_layer → hidden_layer ×2 → output_layer"
    )


def test_descriptions_fit_and_do_not_depend_on_the_order_paths_arrive_in(layout):
    every = [_path(*kept) for n in range(5) for kept in itertools.combinations(range(4), n)]
    expected = PathSet(every, layout).describe_all()
    assert len(set(expected.values())) == 16
    assert max(len(text) for text in expected.values()) <= WIDTH
    for shuffled in (every[::-1], every[3:] + every[:3]):
        assert PathSet(shuffled, layout).describe_all() == expected
    # Without the layout (no model at hand), the names still group.
    assert PathSet(every).describe(_path(0, 2)) == "layers.1, layers.3 skipped"


def test_long_lists_name_their_container_once_and_are_cut_with_a_count():
    paths = [tuple(f"enc.layers.{i}.{p}" for i in range(24) if i not in skipped for p in "abc")
             for skipped in (set(), set(range(0, 24, 2)))]
    text = PathSet(paths).describe(paths[1])
    assert text == "enc.layers.{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22} skipped"
    paths = [tuple(f"enc.layers.{i}.{p}" for i in range(48) if i not in skipped for p in "abc")
             for skipped in (set(), set(range(0, 48, 2)))]
    text = PathSet(paths).describe(paths[1])
    assert text == "enc.layers.{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, … (11 more)} skipped"
    assert len(text) <= WIDTH


# --------------------------------------------------------------------------- in a run

COV = "--dyncheck-invariants=coverage,determinism"


def _summary_path_lines(text: str) -> list[str]:
    summary = text.split("dyncheck summary")[1].split("\n=")[0]
    return [line for line in summary.splitlines() if line.startswith("    ")]


def test_the_summary_tells_layerdrop_paths_by_the_blocks_skipped(dyncheck_run, pytester):
    pytester.makepyfile(decoder=DECODER)
    run = dyncheck_run("--dyncheck", "decoder:spec", COV, "--dyncheck-seed=2", "--dyncheck-max-examples=15")
    assert run.ret == 0, run.text
    lines = _summary_path_lines(run.text)
    assert lines[0] == "    paths through embed → layers.0-3 → norm → head (39 modules), differing in layers.0-3:"
    shown = [line for line in lines if line.startswith("    path ")]
    assert len(shown) == 4 and re.fullmatch(r"    \.\.\. \d+ more \(--dyncheck-explain lists all\)", lines[5])
    # Coverage runs eval mode too: the full path is in the census.
    assert any(re.fullmatch(r"    path all 39 modules  \(\d+ calls, 2,688 params\)", line) for line in shown)
    for line in shown:
        assert len(line) <= 120, line
        assert re.fullmatch(
            r"    path (all 39 modules|(layers\.\d(-\d)?, )*layers\.\d(-\d)? skipped)  \(\d+ calls?(, [\d,]+ params)?\)",
            line,
        ), line
    assert all(len(line) <= 120 for line in lines)


def test_explain_lists_a_path_in_full(dyncheck_run, pytester):
    pytester.makepyfile(decoder=DECODER)
    run = dyncheck_run("--dyncheck", "decoder:spec", "--dyncheck-invariants=determinism",
                       "--dyncheck-seed=2", "--dyncheck-max-examples=3", "--dyncheck-explain")
    lines = _summary_path_lines(run.text)
    assert "more (--dyncheck-explain lists all)" not in run.text
    first = lines.index(next(line for line in lines if line.startswith("    path ")))
    assert lines[first + 1].startswith("        embed → layers.")


def test_a_failure_names_the_path_in_one_short_line(dyncheck_run, pytester):
    pytester.makepyfile(decoder=DECODER)
    run = dyncheck_run("--dyncheck", "decoder:unseeded", "--dyncheck-invariants=determinism", "--dyncheck-seed=1")
    lines = run.failure("::determinism").strip().splitlines()
    # The generator is the model's own: Hypothesis's replay of the example may take the same
    # path again or not (then the message says the failure did not repeat, and goes on).
    start = lines.index(
        "Two calls with the same seed and input took different paths: the model keeps state between calls "
        "or draws from a generator dyncheck does not seed."
    )
    assert start in (2, 3) and (start == 2 or lines[2].startswith("The failure did not repeat")), lines
    blocks = r"(all 39 modules|only (layers\.\d(-\d)?( → )?)+|(layers\.\d(-\d)?(, )?)+ skipped)"
    assert re.fullmatch(rf"  first call:  {blocks}", lines[start + 1]), lines[start + 1]
    assert re.fullmatch(rf"  second call: {blocks}", lines[start + 2]), lines[start + 2]
    path = next(line for line in lines if line.startswith("  path:"))
    assert re.fullmatch(rf"  path:     {blocks} \(of embed → layers\.0-3 → norm → head \(39 modules\)\)", path), path
    assert len(path) <= 120


def test_a_path_line_stays_readable_for_a_bigger_model():
    # 12 layers, every other one skipped: the description is cut with a count, not a screen.
    layers = nn.ModuleList(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)) for _ in range(12))
    model = nn.Sequential()
    model.layers = layers
    leaves = Layout.of(model).leaves
    kept = tuple(n for n in leaves if int(n.split(".")[1]) % 2)
    text = PathSet([leaves, kept], Layout.of(model)).describe(kept)
    assert text == "layers.0, layers.2, layers.4, layers.6, layers.8, layers.10 skipped"


def test_a_path_divergence_on_a_large_model_names_what_differs():
    from dyncheck.agreement import Config, Run, compare

    model = _decoder()

    def run(name: str, path: tuple[str, ...], value: float) -> Run:
        return Run(Config(name), [("output", torch.full((2,), value))], {}, path, model)

    finding = compare(run("cpu", _path(0, 1, 2, 3), 0.0), run("cuda", _path(0, 1, 3), 1.0), model=model)
    assert finding == [
        "path divergence: on cpu the call took one path (all 39 modules), on cuda another (layers.2 skipped) — a "
        "data-dependent branch flipped (rounding differs between the two), so outputs and gradients are not "
        "comparable on this example"
    ]


def test_a_module_computing_with_its_own_parameters_is_a_step_of_the_path():
    # nn.MultiheadAttention holds in_proj_weight and calls F.multi_head_attention_forward,
    # which uses out_proj's weight without calling out_proj: as a container it vanished
    # from every path ("inp → out").
    class Memory(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(4, 8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            h = self.inp(x)
            return self.out(self.attn(h, h, h)[0])

    layout = Layout.of(Memory())
    assert layout.leaves == ("inp", "attn", "attn.out_proj", "out")
    assert layout.leaf_path(("inp", "attn", "out")) == ("inp", "attn", "out")
    # A container with no parameters of its own stays out of paths.
    assert Layout.of(nn.Sequential(nn.Sequential(nn.Linear(2, 2)))).leaves == ("0.0",)


def test_a_step_with_parameters_whose_children_then_run_is_one_visit():
    # timm's BatchNormAct2d is a BatchNorm2d (its own weight and bias) that then calls its
    # drop and act children: "stem → bn1 → bn1 → blocks" told one call as two.
    class NormAct(nn.BatchNorm1d):
        def __init__(self, size):
            super().__init__(size)
            self.drop = nn.Identity()
            self.act = nn.ReLU()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(4, 4)
            self.bn1 = NormAct(4)
            self.blocks = nn.Sequential(*(nn.Linear(4, 4) for _ in range(6)))
            self.head = nn.Linear(4, 2)

    layout = Layout.of(Net())
    assert layout.leaves[:4] == ("stem", "bn1", "bn1.drop", "bn1.act")
    blocks = tuple(f"blocks.{i}" for i in range(6))
    once = ("stem", "bn1", "bn1.drop", "bn1.act", *blocks, "head")
    twice = ("stem", "bn1", "bn1.drop", "bn1.act", "bn1", "bn1.drop", "bn1.act", *blocks, "head")
    assert PathSet([once], layout, width=60).describe(once) == "all 11 modules (stem → bn1 → blocks → head)"
    assert PathSet([twice], layout, width=60).describe(twice) == "all 11 modules (stem → bn1 ×2 → blocks → head)"


def test_a_container_starting_with_such_a_step_is_named_whole_and_varying_children_stay_visible():
    class NormAct(nn.BatchNorm1d):
        def __init__(self, size):
            super().__init__(size)
            self.act = nn.ReLU()

    class Stage(nn.Module):  # a pre-activation block: its first step is a norm-act
        def __init__(self):
            super().__init__()
            self.bn = NormAct(4)
            self.conv = nn.Linear(4, 4)

    class Encoder(nn.Module):  # a parameter of its own (a position table) and layers that vary
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.zeros(4))
            self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(4))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stage = Stage()
            self.encoder = Encoder()
            self.head = nn.Linear(4, 2)

    layout = Layout.of(Net())
    full = ("stage.bn", "stage.bn.act", "stage.conv", "encoder", *(f"encoder.layers.{i}" for i in range(4)), "head")
    skipped = tuple(step for step in full if step != "encoder.layers.1")
    assert PathSet([full], layout, width=60).describe(full) == "all 9 modules (stage → encoder → head)"
    paths = PathSet([full, skipped], layout, width=80)
    assert paths.describe(skipped) == "encoder.layers.1 skipped"
    assert "encoder.layers.0-3" in paths.outline()


@pytest.mark.parametrize(("path", "text"), [
    # a spiking net's two layers step after step, an unrolled cell's
    (["fc1", "fc2"] * 4, "(fc1 → fc2) ×4"),
    (["embed", *["cell", "out"] * 3, "head"], "embed → (cell → out) ×3 → head"),
    # runs of one module fold first, then the group they are in
    (["a", "b", "b", "a", "b", "b"], "(a → b ×2) ×2"),
    # and a group repeated inside a repeated group (a beam search per sample, its steps)
    (["enc", "e", "c", "e", "c", "enc", "e", "c", "e", "c"], "(enc → (e → c) ×2) ×2"),
    # no group repeats: as before
    (["a", "b", "c", "a"], "a → b → c → a"),
])
def test_a_group_of_modules_repeated_is_folded(path, text):
    assert chain(path) == text


def test_a_frozen_parameter_in_a_parameter_dict_runs_with_the_module_holding_it():
    # peft AdaLoRA's ranknum: frozen, in an nn.ParameterDict (never called), read by the
    # parent's forward; with the singular values at zero, changing it moved nothing and
    # coverage called it dead. A trainable one there keeps its container (its gradient says).
    from torch import nn

    from dyncheck.invariants.path_coverage import _lifted
    from reference_models.svd_adapter import SVDAdapterLinear

    model = SVDAdapterLinear()
    assert _lifted(model, model.ranknum["default"], ("ranknum",)) == ("",)
    assert _lifted(model, model.lora_A["default"], ("lora_A",)) == ("lora_A",)
    nested = nn.Sequential(model)
    assert _lifted(nested, model.ranknum["default"], ("0.ranknum",)) == ("0",)
