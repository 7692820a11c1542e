"""determinism: messages pinned line by line; state and unseeded generators are caught."""

from __future__ import annotations

import re

COUNTER = "reference_models.buggy.call_counter:Model"
UNSEEDED = "reference_models.buggy.unseeded_generator:Model"


def test_counter_message(dyncheck_run):
    run = dyncheck_run("--dyncheck", COUNTER, "--dyncheck-seed=11", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[0] == f"determinism violated by {COUNTER}"
    assert lines[1] == ""
    # Fresh copies given the values the first call left give the second call's outputs: the
    # state is the model's (not a generator out of reach), and what the call changed is named.
    assert lines[2] == (
        "Two calls with the same seed and input gave different outputs: forward changes state the output "
        "depends on: fresh copies given the values the first call left give the second call's outputs."
    )
    assert lines[3] == "  the first call changed calls: 0 → 1"
    assert lines[4] == "  output:"
    assert re.fullmatch(r"    Mismatched elements: \d+ / \d+ \(\d+\.\d%\)", lines[5])
    assert re.fullmatch(r"    Greatest absolute difference: \S+ at index \(\d+, \d+\) \(up to 0 allowed\)", lines[6])
    assert re.fullmatch(r"    Greatest relative difference: \S+ at index \(\d+, \d+\) \(up to 0 allowed\)", lines[7])
    assert lines[8] == (
        "  If forward is meant to update it in training (running statistics), keep it in a buffer updated only if "
        "self.training (determinism compares with buffers put back); otherwise advance it outside forward, or pass it "
        "in as an argument."
    )
    # Hypothesis shrinks to the smallest example: one row, the first control value, seed 0.
    assert re.fullmatch(r"  example:  x float32\[1, 8\].*, control=tensor\(\[0\.5\]\), seed=0", lines[9])
    assert lines[10] == "  sizes:    batch=1"
    assert lines[11] == "  path:     fc1 → fc3"
    assert lines[12] == ""
    assert lines[13] == (
        f"Reproduce: pytest --dyncheck {COUNTER} --dyncheck-only --dyncheck-seed=11 -k determinism"
    )


def test_unseeded_generator_is_caught(dyncheck_run):
    run = dyncheck_run("--dyncheck", UNSEEDED, "--dyncheck-invariants=determinism")
    assert run.outcomes() == {f"dyncheck::{UNSEEDED}::determinism": "FAILED"}
    # Copies given the model's changed values do not repeat the second call: no state is blamed.
    assert run.failure("::determinism").strip().splitlines()[2] == (
        "Two calls with the same seed and input gave different outputs: the model keeps state between calls or "
        "draws from a generator dyncheck does not seed (python random, numpy's global generator and torch are seeded)."
    )
    # ... and where the second call departs from the first: the noise is added in forward's code.
    assert (
        "  where it starts: in forward's own code after fc1, whose output agrees, before fc3, whose inputs in the "
        "second call already differ:\n    args[0] against the first call:\n      Mismatched elements:"
    ) in run.failure("::determinism")


def test_the_module_drawing_from_an_unseeded_generator_is_named(dyncheck_run, pytester):
    pytester.makepyfile(
        noisy="""
        import torch
        from torch import nn

        _GENERATOR = torch.Generator().manual_seed(0)  # made at import: no seed of a run reaches it


        class Noise(nn.Module):
            def forward(self, h):
                return h + torch.randn(h.shape, generator=_GENERATOR)


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.noise, self.fc2 = nn.Linear(4, 4), Noise(), nn.Linear(4, 2)

            def forward(self, x):
                return self.fc2(self.noise(self.fc1(x)))
        """
    )
    run = dyncheck_run("--dyncheck", "noisy:Model", "--dyncheck-invariants=determinism")
    assert run.outcomes() == {"dyncheck::noisy:Model::determinism": "FAILED"}, run.text
    lines = run.failure("::determinism").splitlines()
    at = next(i for i, line in enumerate(lines) if "where it starts" in line)
    assert lines[at] == (
        "  where it starts: noise (noisy.Noise) — its inputs in the second call agree with the first call's, its "
        "output does not:"
    ), lines


def test_buffers_a_train_mode_call_updates_are_put_back_before_the_second(dyncheck_run, pytester):
    # An observation normaliser (reinforcement learning) updates running statistics in
    # training forward and normalises with them, as a VQ-VAE's EMA codebook does: training
    # statistics, by design. The two calls are compared with the buffers put back.
    pytester.makepyfile(
        normed="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self, plain=False):
                super().__init__()
                self.register_buffer("mean", torch.zeros(4))
                self.register_buffer("count", torch.tensor(1.0))
                self.fc = nn.Linear(4, 2)
                self.plain = plain
                self.shift = 0.0

            def forward(self, obs):
                if self.training:
                    with torch.no_grad():
                        self.mean += (obs.mean(0) - self.mean) / (self.count + 1)
                        self.count = self.count + 1
                        if self.plain:
                            self.shift += 1.0  # a plain attribute: outside what is put back
                return self.fc(obs - self.mean) + self.shift

        def with_plain_state():
            return Model(plain=True)
        """
    )
    run = dyncheck_run("--dyncheck", "normed:Model", "--dyncheck-invariants=determinism")
    assert run.outcomes() == {"dyncheck::normed:Model::determinism": "PASSED"}, run.text
    assert re.search(
        r"compared with buffers put back on \d+ examples: forward updates mean, count in train mode \(training "
        r"statistics, as BatchNorm's\), and the next call reads them", run.text
    ), run.text
    # A plain attribute the call sets beside them is not put back: the finding names it.
    run = dyncheck_run("--dyncheck", "normed:with_plain_state", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[2].endswith("forward changes state the output depends on: fresh copies given the values the "
                             "first call left give the second call's outputs."), run.text
    assert lines[3].startswith("  the first call changed ") and "shift: 0.0 → 1.0" in lines[3], lines


def test_state_the_first_call_makes_is_named(dyncheck_run, pytester):
    # A spiking layer's membrane kept on the module, made on the first call (no reset).
    pytester.makepyfile(
        membrane="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                if not hasattr(self, "mem") or self.mem.shape[0] != x.shape[0]:
                    self.mem = torch.zeros(x.shape[0], 3)
                self.mem = (0.9 * self.mem + self.fc(x)).detach()
                return self.mem * 2
        """
    )
    run = dyncheck_run("--dyncheck", "membrane:Model", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert re.fullmatch(r"  the first call changed mem: missing → a float32\[\d, 3\] tensor", lines[3]), lines


def test_a_buffer_reassigned_at_another_size_is_named(dyncheck_run, pytester):
    # Capsule routing whose logits, a buffer, are reassigned per call at the input's size
    # and start the next call's routing: the copies given what the first call left take
    # the new size, and the buffer is named with it.
    pytester.makepyfile(
        sticky="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.register_buffer("logits", torch.zeros(1))

            def forward(self, x):
                u = self.fc(x)
                b = self.logits if self.logits.shape == u.shape[1:] else torch.zeros(u.shape[1:])
                c = torch.softmax(b, -1)
                self.logits = (b + u.detach().mean(0)).detach()
                return u * c
        """
    )
    run = dyncheck_run("--dyncheck", "sticky:Model", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[2].endswith("fresh copies given the values the first call left give the second call's outputs."), run.text
    assert lines[3] == "  the first call changed logits (a buffer, resized from [1] to [4])", run.text


def test_path_divergence_is_reported_as_such(dyncheck_run, pytester):
    pytester.makepyfile(
        flip="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(3, 2)
                self.b = nn.Linear(3, 2)
                self.calls = 0

            def forward(self, x):
                self.calls += 1
                return self.a(x) if self.calls % 2 else self.b(x)
        """
    )
    run = dyncheck_run("--dyncheck", "flip:Model", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[2].startswith("Two calls with the same seed and input took different paths")
    assert lines[3:5] == ["  first call:  a", "  second call: b"]


def test_seeded_randomness_is_deterministic(dyncheck_run, pytester):
    pytester.makepyfile(
        noisy="""
        import random
        import numpy as np
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 3)
                self.drop = nn.Dropout(0.5)

            def forward(self, x):
                noise = torch.randn_like(x) + float(np.random.rand()) + random.random()
                return self.drop(self.fc(x + noise))
        """
    )
    run = dyncheck_run("--dyncheck", "noisy:Model", "--dyncheck-invariants=determinism")
    assert run.ret == 0, run.text


def test_lazy_layers_are_warmed_up(dyncheck_run, pytester):
    pytester.makepyfile(
        lazy="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.LazyLinear(3)
                self.drop = nn.Dropout(0.5)
                self.first = nn.Linear(4, 4)

            def forward(self, x):
                return self.drop(self.fc(self.first(x)))
        """
    )
    run = dyncheck_run("--dyncheck", "lazy:Model", "--dyncheck-invariants=determinism")
    assert run.ret == 0, run.text


def test_a_failure_that_does_not_repeat_is_reported_as_flaky(dyncheck_run, pytester):
    pytester.makepyfile(
        flakymod="""
        from torch import nn

        _CALLS = [0]  # state outside the module: a fresh copy of the model does not reset it

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 2)

            def forward(self, x):
                _CALLS[0] += 1
                out = self.fc(x)
                # once, never again (on the 25th call: dyncheck's own set-up calls the model first,
                # a dozen times at most for a Linear's vectors)
                return out + 1.0 if _CALLS[0] == 25 else out
        """
    )
    run = dyncheck_run("--dyncheck", "flakymod:Model", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[0] == "determinism violated by flakymod:Model"
    assert lines[2].startswith("The failure did not repeat when Hypothesis ran the same example again")
    assert lines[3].startswith("Two calls with the same seed and input gave different outputs")
    assert lines[-1].startswith("Reproduce: pytest --dyncheck flakymod:Model")


def test_a_layer_made_on_the_first_call_is_named(dyncheck_run):
    target = "reference_models.buggy.grown_layer:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-seed=1", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[2] == (
        "Two calls with the same seed and input took different paths: the first call changed the model's own "
        "submodules, so the second ran a different model."
    )
    assert lines[3] == "  forward added head (Linear)"
    assert lines[4].startswith("  first call:  fc1")


SWAPPED = """
import torch
from torch import nn


class Sparse(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        return self.proj(x)


class Full(nn.Module):
    def __init__(self, proj):
        super().__init__()
        self.proj = proj
        self.dropout = nn.Dropout(0.0)

    def forward(self, x):
        return self.dropout(self.proj(x)) * 2


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = Sparse()

    def forward(self, x):
        if x.shape[0] < 4 and isinstance(self.attention, Sparse):
            # BigBird's: too short for block-sparse attention, switch to full attention for good
            self.attention = Full(self.attention.proj)
        return self.attention(x)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return self.block(x)
"""


def test_a_submodule_swapped_in_forward_is_named(dyncheck_run, pytester):
    pytester.makepyfile(swapped=SWAPPED)
    run = dyncheck_run("--dyncheck", "swapped:Model", "--dyncheck-seed=1", "--dyncheck-invariants=determinism")
    text = run.failure("::determinism")
    assert "the first call changed the model's own submodules, so the second ran a different model." in text
    assert "  forward replaced block.attention: Sparse → Full\n" in text
    # its children are part of that change, not lines of their own
    assert "block.attention.dropout (" not in text


STATEFUL = """
import torch
from torch import nn

_PHASE = [0]


class Config:
    width = 4


class CounterAndNorms(nn.Module):
    '''A call counter the output reads; BatchNorms in training, whose running statistics the
    output does not read; a NaN buffer meaning "not set"; a generator object kept on the model.'''

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bn1, self.bn2 = nn.BatchNorm1d(8), nn.BatchNorm1d(8)
        self.register_buffer("clip_at", torch.full((8,), float("nan")))
        self.cfg = Config()
        self.calls, self.stream = 0, None

    def forward(self, x):
        self.calls += 1
        self.stream = (i for i in range(3))  # cannot be copied
        return self.bn2(self.bn1(self.fc(x))) / (1 + 0.1 * self.calls)


class GlobalToggle(nn.Module):
    '''The cause is a module-level flag; the model's own BatchNorm and bookkeeping change too.'''

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.bn = nn.BatchNorm1d(4)
        self.cfg = Config()
        self.last_batch = None

    def forward(self, x):
        _PHASE[0] ^= 1
        self.last_batch = x.shape[0]
        return self.bn(self.fc(x)) * (1.0 + _PHASE[0])
"""


def test_only_the_state_the_output_depends_on_is_named(dyncheck_run, pytester):
    pytester.makepyfile(stateful=STATEFUL)
    run = dyncheck_run("--dyncheck", "stateful:CounterAndNorms", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[3] == "  the first call changed calls: 0 → 1", run.text


def test_a_global_that_changes_blames_no_state_of_the_model(dyncheck_run, pytester):
    pytester.makepyfile(stateful=STATEFUL)
    run = dyncheck_run("--dyncheck", "stateful:GlobalToggle", "--dyncheck-invariants=determinism")
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[2].endswith("the model keeps state between calls or draws from a generator dyncheck does not "
                             "seed (python random, numpy's global generator and torch are seeded)."), run.text
    assert "the first call changed" not in run.text


def test_the_walk_compares_bitwise_as_the_check_does(dyncheck_run, pytester):
    # A tiny unseeded jitter, then features that amplify it: the jitter is named, not the
    # deterministic module after it where the difference first passes 1e-3.
    pytester.makepyfile(
        jittered="""
        import random

        import torch
        from torch import nn


        class Jitter(nn.Module):
            def __init__(self):
                super().__init__()
                self.rng = random.Random(0)  # its own generator: no seed reaches it

            def forward(self, h):
                return h + 2e-4 * self.rng.random()


        class Wave(nn.Module):
            def forward(self, h):
                return torch.sin(1000.0 * h)


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.jitter, self.wave, self.fc2 = nn.Linear(4, 8), Jitter(), Wave(), nn.Linear(8, 3)

            def forward(self, x):
                return self.fc2(self.wave(self.jitter(self.fc1(x))))
        """
    )
    run = dyncheck_run("--dyncheck", "jittered:Model", "--dyncheck-invariants=determinism")
    assert run.outcomes() == {"dyncheck::jittered:Model::determinism": "FAILED"}, run.text
    lines = run.failure("::determinism").splitlines()
    at = next(i for i, line in enumerate(lines) if "where it starts" in line)
    assert lines[at].startswith("  where it starts: jitter (jittered.Jitter) — its inputs in the second call agree"), lines


def test_spectral_norm_is_compared_in_eval_mode(dyncheck_run):
    # torch's own layer advances its power iteration on each train-mode call: not the
    # model's state to move out of forward, as the failure advised.
    target = "reference_models.spectral_disc:SpectralDiscriminator"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=determinism", "--dyncheck-max-examples=10")
    assert run.ret == 0, run.text
    assert re.search(
        r"compared with the power iteration put back on \d+ examples?: torch's spectral_norm \(fc1, fc2\) advances "
        r"it on every call in train mode", run.text,
    ), run.text


def test_spectral_norm_does_not_hide_other_state(dyncheck_run, pytester):
    # A counter beside the spectral norm still changes the eval-mode calls: reported.
    pytester.makepyfile(counted="""
        import torch
        from torch import nn
        from torch.nn.utils import parametrizations

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = parametrizations.spectral_norm(nn.Linear(4, 2))
                self.calls = 0

            def forward(self, x):
                self.calls += 1
                return self.fc(x) * self.calls

        class TrainNoise(nn.Module):
            # noise from a generator of its own, in train mode only: eval would hide it
            def __init__(self):
                super().__init__()
                self.fc = parametrizations.spectral_norm(nn.Linear(4, 2))
                self.generator = torch.Generator().manual_seed(0)

            def forward(self, x):
                h = self.fc(x)
                return h + torch.randn(h.shape, generator=self.generator) if self.training else h
        """)
    run = dyncheck_run(
        "--dyncheck", "counted:Model", "--dyncheck", "counted:TrainNoise", "--dyncheck-invariants=determinism",
        "--dyncheck-max-examples=10",
    )
    assert run.outcomes() == {
        "dyncheck::counted:Model::determinism": "FAILED", "dyncheck::counted:TrainNoise::determinism": "FAILED",
    }, run.text


def test_eval_mode_is_compared_too_where_the_models_own_codereads_training(dyncheck_run):
    from torch import nn

    from dyncheck.invariants.determinism import reads_training
    from reference_models.buggy.unreset_cache import Model
    from reference_models.gated import DynamicNet

    assert reads_training(Model()) and not reads_training(DynamicNet(8, 6, 4))
    assert not reads_training(nn.Sequential(nn.Dropout(), nn.BatchNorm1d(3)))  # torch's own: not read
    target = "reference_models.buggy.unreset_cache:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=determinism")
    lines = run.failure(f"{target}::determinism").strip().splitlines()
    assert lines[2] == (
        "Two calls in eval mode with the same seed and input gave different outputs (in train mode they agree): "
        "forward keeps state between calls in eval mode only, a cache kept on the module (keys and values of an "
        "earlier call, a memo of encodings), statistics it updates in eval mode too, or a counter."
    ), lines
    assert "  Compute it in each call, or pass the cache in and return it (past_key_values)." in lines


def test_a_path_that_state_decides_with_the_same_outputs_is_a_note(dyncheck_run, pytester):
    # SpeechBrain's LiGRU at dropout 0 redraws its pool of dropout masks, running its Dropout,
    # only when the batch size changes: two calls take different paths, bitwise alike.
    pytester.makepyfile(
        pooled="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 2)
                self.drop = nn.Dropout(0.0)
                self.pool_for = None

            def forward(self, x):
                if self.pool_for != x.shape[0]:
                    self.masks = self.drop(torch.ones(x.shape[0], 2))
                    self.pool_for = x.shape[0]
                return self.fc(x) * self.masks
        """
    )
    # state_roundtrip alike: the original ran it on an earlier example, the fresh copy runs it now.
    run = dyncheck_run("--dyncheck", "pooled:Model", "--dyncheck-invariants=determinism,state_roundtrip",
                       "--dyncheck-max-examples=10")
    assert run.outcomes() == {
        "dyncheck::pooled:Model::determinism": "PASSED", "dyncheck::pooled:Model::state_roundtrip": "PASSED",
    }, run.text
    assert re.search(
        r"on \d+ examples? two calls took different paths and gave bitwise the same outputs, the modules one ran and "
        r"the other did not without weights or buffers \(first call: drop → fc; second: fc\)", run.text,
    ), run.text
    assert re.search(
        r"a fresh copy loaded from the state_dict and the original took different paths and gave bitwise the same "
        r"outputs, the modules one ran and the other did not without weights or buffers \(original: fc; fresh copy: "
        r"drop → fc\)", run.text,
    ), run.text


def test_a_block_with_weights_run_on_one_call_only_fails_though_the_outputs_agree(dyncheck_run, pytester):
    # A ReZero block (its gate at 0: it adds nothing until trained) run only once a plain
    # attribute says so: bitwise the same outputs now, other outputs once the gate has learnt.
    pytester.makepyfile(
        gated="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 2)
                self.block = nn.Linear(2, 2)
                self.alpha = nn.Parameter(torch.zeros(()))
                self.warm = False

            def forward(self, x):
                h = self.fc(x)
                if self.warm:
                    h = h + self.alpha * self.block(h)
                self.warm = True
                return h
        """
    )
    run = dyncheck_run("--dyncheck", "gated:Model", "--dyncheck-invariants=determinism,state_roundtrip")
    assert run.outcomes() == {
        "dyncheck::gated:Model::determinism": "FAILED", "dyncheck::gated:Model::state_roundtrip": "FAILED",
    }, run.text
    assert "Two calls with the same seed and input took different paths" in run.failure("::determinism")
