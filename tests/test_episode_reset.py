"""episode_reset: with every step flagged as an episode's start, no output reads the state
passed in. Proven both ways on the bundled agent and its missing reset, on sb3-style
episode starts, and where the check must compare nothing: flags that mark an episode's end
(the state zeroed after the step), a state forward ignores, and models it does not apply to."""

from __future__ import annotations

import pytest

ONLY = "--dyncheck-invariants=episode_reset"

AGENTS = """
import torch
from torch import nn

from dyncheck.strategies import tensors

class StartedGRU(nn.Module):
    # sb3-contrib's _process_sequence: each sequence's state zeroed where its episode starts
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x, h0, episode_starts):
        out, h = self.gru(x, self.reset(h0, episode_starts))
        return self.head(out), h

    def reset(self, h0, episode_starts):
        return h0 * (1.0 - episode_starts).view(1, -1, 1)

class LateResetGRU(StartedGRU):
    # BUG: the state zeroed after the sequence, for the next call: the first step read the old episode's
    def forward(self, x, h0, episode_starts):
        out, h = self.gru(x, h0)
        return self.head(out), self.reset(h, episode_starts)

class EndedCell(nn.Module):
    # done marks the step that ended an episode: the step reads the state, which is zeroed after it
    def __init__(self):
        super().__init__()
        self.cell, self.pi = nn.GRUCell(4, 8), nn.Linear(8, 3)

    def forward(self, obs, h, done):
        h = self.cell(obs, h)
        return self.pi(h), h * (1.0 - done)[:, None]

class EndedWide(EndedCell):
    # as many actions as state features: the reset state is told apart from the logits
    def __init__(self):
        super().__init__()
        self.pi = nn.Linear(8, 8)

class ObservedState(nn.Module):
    # robot_state is an observation beside the recurrent h
    def __init__(self):
        super().__init__()
        self.enc_o, self.enc_s = nn.Linear(4, 8), nn.Linear(7, 8)
        self.cell, self.pi = nn.GRUCell(16, 16), nn.Linear(16, 3)

    def forward(self, obs, robot_state, h, done):
        h = h * (1 - done)[:, None]
        h = self.cell(torch.relu(torch.cat([self.enc_o(obs), self.enc_s(robot_state)], -1)), h)
        return self.pi(h), h

class TwoFlags(nn.Module):
    # is_first resets the state; done only masks the value
    def __init__(self):
        super().__init__()
        self.cell, self.v = nn.GRUCell(4, 8), nn.Linear(8, 1)

    def forward(self, obs, h, done, is_first):
        h = self.cell(obs, h * (1 - is_first)[:, None])
        return self.v(h) * (1 - done)[:, None], h

class PyReset(nn.Module):
    # one flag for the whole call, tested in Python
    def __init__(self):
        super().__init__()
        self.cell, self.pi = nn.GRUCell(4, 8), nn.Linear(8, 3)

    def forward(self, obs, h, reset):
        if reset:
            h = torch.zeros_like(h)
        h = self.cell(obs, h)
        return self.pi(h), h

class RL2(nn.Module):
    # done is an input of the network: the memory is kept across episodes on purpose
    def __init__(self):
        super().__init__()
        self.cell, self.pi = nn.GRUCell(5, 8), nn.Linear(8, 3)

    def forward(self, obs, hidden, done):
        h = self.cell(torch.cat([obs, done[:, None]], -1), hidden)
        return self.pi(h), h

class Critic(nn.Module):
    # state is an observation: no recurrence at all
    __dyncheck__ = {"inputs": {
        "state": tensors(shape=("batch", 6)), "action": tensors(shape=("batch", 2)),
        "done": tensors(shape=("batch",), min_value=0.0, max_value=1.0),
    }}

    def __init__(self):
        super().__init__()
        self.q = nn.Linear(9, 1)

    def forward(self, state, action, done):
        return self.q(torch.cat([state, action, done[:, None]], -1))

class EpisodicTable(nn.Module):
    # memory: an episodic table kept across episodes on purpose; only h resets
    __dyncheck__ = {"inputs": {
        "obs": tensors(shape=("batch", 4)), "h": tensors(shape=("batch", 8), min_value=-1.0, max_value=1.0),
        "memory": tensors(shape=(5, 8)), "is_first": tensors(shape=("batch",), min_value=0.0, max_value=1.0),
    }}

    def __init__(self):
        super().__init__()
        self.cell, self.pi = nn.GRUCell(4, 8), nn.Linear(16, 3)

    def forward(self, obs, h, memory, is_first):
        h = self.cell(obs, h * (1 - is_first)[:, None])
        read = torch.softmax(h @ memory.T, -1) @ memory
        return self.pi(torch.cat([h, read], -1)), h

class InitialHidden(nn.Module):
    # initial_hidden is what the state resets to, not the state
    def __init__(self):
        super().__init__()
        self.cell, self.pi = nn.GRUCell(4, 8), nn.Linear(8, 3)

    def forward(self, obs, hidden, initial_hidden, is_first):
        f = is_first[:, None]
        h = self.cell(obs, f * initial_hidden + (1 - f) * hidden)
        return self.pi(h), h

class StoredStates(nn.Module):
    # torchrl's recurrent mode: each trajectory starts from the state its rollout stored at
    # is_init, zero there by construction; is_init only cuts the trajectories
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def forward(self, obs, h, is_init):
        outs = []
        for t in range(obs.shape[0]):
            h = self.cell(obs[t], torch.where(is_init[t][:, None], h, h))
            outs.append(h)
        return torch.stack(outs)

class Ignored(nn.Module):
    # the state is taken and never read
    __dyncheck__ = {"inputs": {
        "obs": tensors(shape=("batch", 4)), "hidden": tensors(shape=("batch", 8)),
        "is_first": tensors(shape=("batch",), min_value=0.0, max_value=1.0),
    }}

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, obs, hidden, is_first):
        return self.fc(obs) * (1.0 - is_first)[:, None]

class Unread(Ignored):
    __dyncheck__ = {}  # inferred: hidden, which forward never reads, is passed as None

class NoState(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, obs, done):
        return self.fc(torch.cat([obs, done[:, None]], -1))
"""


def test_a_missing_reset_is_caught_and_the_bundled_agent_passes(dyncheck_run):
    good, bad = "reference_models.episode_lstm:EpisodeLSTMAgent", "reference_models.buggy.missing_reset:Model"
    run = dyncheck_run("--dyncheck", good, "--dyncheck", bad, ONLY)
    assert run.outcomes() == {
        f"dyncheck::{good}::episode_reset": "PASSED", f"dyncheck::{bad}::episode_reset": "FAILED",
    }, run.text
    failure = run.failure(f"{bad}::episode_reset")
    assert (
        "With every step flagged as an episode's start (done all 1), output[0] still depends on the state passed "
        "in (lstm_state): another state gives another output[0]. A step that starts an episode must not read the "
        "previous episode's state: reset it where done is set, before the step reads it (state * (1 - done))."
    ) in failure, failure
    assert "Greatest absolute difference" in failure and "changed: output[0], output[1][0], output[1][1]" in failure


@pytest.mark.parametrize("model", ["ObservedState", "TwoFlags", "PyReset", "EpisodicTable", "InitialHidden"])
def test_correct_resets_pass(dyncheck_run, pytester, model):
    # an observation named like a state is not changed; the unambiguous flag is the one set
    # (done only masks a value); a Python bool flag is set as True; a memory table kept across
    # episodes, and the state the model resets to, are not changed either
    pytester.makepyfile(agents=AGENTS)
    run = dyncheck_run("--dyncheck", f"agents:{model}", ONLY)
    assert run.outcomes() == {f"dyncheck::agents:{model}::episode_reset": "PASSED"}, run.text


def test_a_sequence_per_episode_start_is_reset_or_caught(dyncheck_run, pytester):
    pytester.makepyfile(agents=AGENTS)
    run = dyncheck_run("--dyncheck", "agents:StartedGRU", "--dyncheck", "agents:LateResetGRU", ONLY)
    assert run.outcomes() == {
        "dyncheck::agents:StartedGRU::episode_reset": "PASSED", "dyncheck::agents:LateResetGRU::episode_reset": "FAILED",
    }, run.text
    assert "(episode_starts all 1)" in run.failure("agents:LateResetGRU::episode_reset")


@pytest.mark.parametrize(("model", "reason"), [
    ("Unread", "hidden holds no floating values to change"),
    ("EndedCell", "the flags mark the step that ended an episode (the state is zeroed after it)"),
    ("EndedWide", "the flags mark the step that ended an episode (the state is zeroed after it)"),
    ("RL2", "done reaches cell as input features, not as a reset of the state: a memory kept across episodes on "
            "purpose (RL²) is not judged"),
    ("Critic", "forward takes done but no recurrent state to reset"),
    ("Ignored", "no output changes with the state given, flagged or not: the state reaches nothing to compare"),
    ("NoState", "forward takes done but no recurrent state to reset"),
    ("StoredStates", "forward takes no episode-start flags"),
])
def test_what_compares_nothing_is_a_skip(dyncheck_run, pytester, model, reason):
    pytester.makepyfile(agents=AGENTS)
    run = dyncheck_run("--dyncheck", f"agents:{model}", ONLY)
    assert run.outcomes() == {f"dyncheck::agents:{model}::episode_reset": "SKIPPED"}, run.text
    assert reason in run.skip_reason(f"dyncheck::agents:{model}::episode_reset")


def test_a_model_without_flags_is_a_skip(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.rnn:DynamicRNN", ONLY)
    assert run.skip_reason("dyncheck::reference_models.rnn:DynamicRNN::episode_reset") == (
        "forward takes no episode-start flags (named like episode_starts, is_first, resets or done)"
    )
