"""The registry of invariants: the built-in ones, then third-party ones registered under
the ``dyncheck.invariants`` entry-point group (each entry point names an Invariant class)."""

from __future__ import annotations

from importlib.metadata import entry_points

from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants.baseline import BaselineCheck
from dyncheck.invariants.batch_invariance import BatchInvariance
from dyncheck.invariants.causality import Causality
from dyncheck.invariants.compile_agreement import CompileAgreement
from dyncheck.invariants.determinism import Determinism
from dyncheck.invariants.device_agreement import DeviceAgreement
from dyncheck.invariants.dtype_agreement import DtypeAgreement
from dyncheck.invariants.episode_reset import EpisodeReset
from dyncheck.invariants.finite import Finite
from dyncheck.invariants.grad_isolation import GradIsolation
from dyncheck.invariants.packed_rnn import PackedRNN
from dyncheck.invariants.padding_invariance import PaddingInvariance
from dyncheck.invariants.path_coverage import Coverage
from dyncheck.invariants.purity import Purity
from dyncheck.invariants.refactor_agreement import RefactorAgreement
from dyncheck.invariants.state_roundtrip import StateRoundtrip
from dyncheck.invariants.tied_weights import TiedWeights

__all__ = ["BUILTIN", "Context", "Invariant", "registry"]

BUILTIN: tuple[type[Invariant], ...] = (
    Determinism,
    Finite,
    GradIsolation,
    Coverage,
    StateRoundtrip,
    Purity,
    TiedWeights,
    DeviceAgreement,
    DtypeAgreement,
    BatchInvariance,
    PackedRNN,
    PaddingInvariance,
    EpisodeReset,
    Causality,
    CompileAgreement,
    RefactorAgreement,
    BaselineCheck,
)


def registry() -> dict[str, type[Invariant]]:
    """Invariant name -> class, built-ins first, then entry points sorted by name."""
    found = {cls.name: cls for cls in BUILTIN}
    for entry in sorted(entry_points(group="dyncheck.invariants"), key=lambda e: e.name):
        cls = entry.load()
        found.setdefault(cls.name, cls)
    return found
