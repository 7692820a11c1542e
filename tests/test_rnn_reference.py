"""The naive loop of dyncheck.rnn_reference equals nn.RNN/LSTM/GRU, over every option.

Each sequence runs alone through the module (a batch of one, no padding) and through the
naive loop, in float64 so the tolerances are tight: outputs, h_n, c_n and the gradients of
every parameter and of the input.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from dyncheck.rnn_reference import naive_rnn

TIGHT = {"rtol": 1e-10, "atol": 1e-10}


@st.composite
def rnn_modules(draw) -> nn.RNNBase:
    kind = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    input_size = draw(st.integers(1, 5))
    hidden_size = draw(st.integers(1, 5))
    options = {
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
    }
    if kind == "RNN":
        options["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    if kind == "LSTM" and hidden_size > 1:
        options["proj_size"] = draw(st.integers(0, hidden_size - 1))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    return getattr(nn, kind)(input_size, hidden_size, **options).double()


def _run_module(module: nn.RNNBase, sequence: torch.Tensor):
    """The module on a batch of one, the batch axis removed from its results."""
    batch = sequence.unsqueeze(0 if module.batch_first else 1)
    output, hidden = module(batch)
    h_n, c_n = hidden if isinstance(hidden, tuple) else (hidden, None)
    output = output[0] if module.batch_first else output[:, 0]
    return output, h_n[:, 0], None if c_n is None else c_n[:, 0]


@given(module=rnn_modules(), length=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_naive_loop_equals_the_module(module: nn.RNNBase, length: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    sequence = torch.randn(length, module.input_size, generator=generator, dtype=torch.float64)
    expected = _run_module(module, sequence.clone().requires_grad_())
    actual = naive_rnn(module, sequence.clone().requires_grad_())
    for name, a, e in zip(("output", "h_n", "c_n"), actual, expected):
        assert (a is None) == (e is None), name
        if e is not None:
            torch.testing.assert_close(a, e, **TIGHT, msg=lambda m, name=name: f"{name}: {m}")

    # Gradients of a random projection of every result, parameter by parameter.
    weights = [torch.randn(e.shape, generator=generator, dtype=torch.float64) for e in expected if e is not None]
    parameters = dict(module.named_parameters())

    def gradients(results):
        loss = sum((w * r).sum() for w, r in zip(weights, [r for r in results if r is not None]))
        return torch.autograd.grad(loss, list(parameters.values()))

    for name, a, e in zip(parameters, gradients(actual), gradients(expected)):
        torch.testing.assert_close(a, e, **TIGHT, msg=lambda m, name=name: f"grad of {name}: {m}")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_shapes_of_a_two_layer_bidirectional_module(kind: str) -> None:
    extra = {"proj_size": 2} if kind == "LSTM" else {}
    module = getattr(nn, kind)(4, 3, num_layers=2, bidirectional=True, **extra)
    output, h_n, c_n = naive_rnn(module, torch.randn(5, 4))
    out = 2 if kind == "LSTM" else 3
    assert output.shape == (5, 2 * out)
    assert h_n.shape == (4, out)
    assert (c_n.shape == (4, 3)) if kind == "LSTM" else c_n is None


def test_the_reverse_direction_starts_at_the_last_valid_step() -> None:
    # A sequence of length 1 gives the reverse direction exactly one step from zero state,
    # whatever a padded batch would have put after it.
    torch.manual_seed(0)
    module = nn.GRU(2, 3, bidirectional=True).double()
    x = torch.randn(1, 2, dtype=torch.float64)
    output, h_n, _ = naive_rnn(module, x)
    torch.testing.assert_close(output[0, 3:], h_n[1], **TIGHT)
    torch.testing.assert_close(output[0, :3], h_n[0], **TIGHT)


@given(module=rnn_modules(), lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_sequences_side_by_side_equal_each_alone(module: nn.RNNBase, lengths: list[int], seed: int) -> None:
    # naive_rnn_rows (packed_rnn's reference) is naive_rnn on each sequence alone, results
    # and gradients, whatever the other rows' lengths.
    from dyncheck.rnn_reference import naive_rnn_rows

    generator = torch.Generator().manual_seed(seed)
    sequences = [torch.randn(n, module.input_size, generator=generator, dtype=torch.float64) for n in lengths]
    together = naive_rnn_rows(module, sequences)
    alone = [naive_rnn(module, s) for s in sequences]
    parameters = list(module.parameters())
    for row, (got, want) in enumerate(zip(together, alone)):
        for name, a, e in zip(("output", "h_n", "c_n"), got, want):
            assert (a is None) == (e is None), name
            if e is not None:
                torch.testing.assert_close(a, e, **TIGHT, msg=lambda m, name=name, row=row: f"row {row} {name}: {m}")
        weights = [torch.randn(e.shape, generator=generator, dtype=torch.float64) for e in want if e is not None]

        def gradients(results):
            loss = sum((w * r).sum() for w, r in zip(weights, [r for r in results if r is not None]))
            return torch.autograd.grad(loss, parameters, allow_unused=True, retain_graph=True)

        for index, (a, e) in enumerate(zip(gradients(got), gradients(want))):
            a = torch.zeros_like(parameters[index]) if a is None else a
            e = torch.zeros_like(parameters[index]) if e is None else e
            torch.testing.assert_close(a, e, **TIGHT, msg=lambda m, row=row, index=index: f"row {row} grad {index}: {m}")
