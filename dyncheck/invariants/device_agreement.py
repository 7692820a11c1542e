"""device_agreement: the same model, weights, example and seed give the same outputs,
gradients and path on two devices (``--dyncheck-devices``, default cpu and cuda), with
TF32 off and attention on its math kernel on both (precision the kernels trade for speed).

When the devices still disagree once two innocent explanations are ruled out -- the first
device's own float32 rounding (a float64 copy on it is the reference: see
:func:`~dyncheck.agreement.rounding_margins`; not with a configured tolerance) and a
ReLU-type kink whose side the devices' rounding decided (:mod:`dyncheck.kinks`) -- the
reference device runs the example again under the same seed
and under another: if a seed changes the output too, the model draws random numbers even
in eval mode, and each device's generator gives its own stream from the same seed, so the
report says so and how to make the streams agree (draw on the CPU and move the result).
"""

from __future__ import annotations

from typing import Any

import torch

from dyncheck.agreement import (
    Config,
    available,
    compare,
    exact_attention,
    nothing_compared,
    parse_devices,
    rounding_margins,
    run_config,
    seed_dependence,
    tf32_disabled,
)
from dyncheck.errors import InvalidArgument, InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.kinks import run_aligned

__all__ = ["DeviceAgreement", "devices_for"]


def devices_for(settings: Any) -> list[Config]:
    """The configurations to compare: the option's, or cpu and cuda when CUDA is here."""
    text = getattr(settings, "devices", "") or ""
    if text:
        return parse_devices(text)
    configs = [Config("cpu", "cpu")]
    if torch.cuda.is_available():
        configs.append(Config("cuda", "cuda"))
    return configs


class DeviceAgreement(Invariant):
    name = "device_agreement"
    summary = (
        "the same weights, example and seed give the same outputs, gradients and path on two devices "
        "(TF32 off); a flipped branch is reported as a path divergence"
    )

    def unavailable(self, settings: Any) -> str | None:
        try:
            configs = devices_for(settings)
        except (InvalidArgument, ImportError, AttributeError) as exc:
            return f"--dyncheck-devices: {exc}"
        usable = [c for c in configs if available(c) is None]
        missing = [f"{c.name} ({available(c)})" for c in configs if available(c) is not None]
        if len(usable) < 2:
            have = ", ".join(c.name for c in usable) or "none"
            extra = f"; not available: {', '.join(missing)}" if missing else ""
            return (
                f"needs two devices to compare, this run has {have}{extra} "
                "(give --dyncheck-devices=cpu,cuda on a machine with a GPU)"
            )
        return None

    def check(self, context: Context, example: Example) -> None:
        configs = [c for c in devices_for(context.settings) if available(c) is None]
        reference = configs[0]
        tolerance = context.tolerance(self.name)
        # TF32 off and attention's math kernel: precision the kernels trade for speed, not the model's.
        with tf32_disabled(), exact_attention():
            first = run_config(context.fresh_model(), context.target, example, reference)
            context.record(first.path, example)
            if (lazy := context.lazy_on(first.path)) is not None:
                return context.nothing_to_compare(lazy)
            others = [run_config(context.fresh_model(), context.target, example, c) for c in configs[1:]]
            findings = [f for other in others for f in compare(first, other, tolerance=tolerance, model=first.model)]
            margins = None
            if findings and tolerance is None:
                # Each device's kernels round otherwise: what the first device's float32
                # shares with them (its distance from float64) is not a finding.
                margins = rounding_margins(context.fresh_model, context.target, example, first)
                if margins is not None:
                    findings = [f for other in others for f in compare(first, other, model=first.model, margins=margins)]
            if findings:
                kinked = self._kinks(context, example, configs, tolerance, margins)
                findings = findings if kinked is None else kinked
        if not findings and (missing := nothing_compared(first)):
            return context.nothing_to_compare(missing)
        context.compared()
        if findings:
            details = [] if len(findings) == 1 else [f"- {f}" for f in findings]
            if self._draws_random_numbers(context, example, reference, first):
                details.append(_STREAMS)
            raise InvariantViolation(
                findings[0] if len(findings) == 1 else f"The devices disagree ({len(findings)} differences):",
                details,
                path=first.path,
            )

    @staticmethod
    def _kinks(
        context: Context, example: Example, configs: list[Config], tolerance: Any, margins: dict[str, float] | None
    ) -> list[str] | None:
        """The findings left when each other device takes the first device's side of every
        kink the two decided otherwise on values within rounding of each other (a ReLU's
        input that cancels to 1e-8 against terms near 1: the devices' kernels sum in
        another order; see :mod:`dyncheck.kinks`); None when, for some device, no kink was
        moved or the calls did not line up (the findings stand as they were)."""
        findings = []
        for config in configs[1:]:
            runs = run_aligned(
                lambda: run_config(context.fresh_model(), context.target, example, configs[0]),
                lambda config=config: run_config(context.fresh_model(), context.target, example, config),
            )
            if runs is None:
                return None
            first, other = runs
            findings += compare(first, other, tolerance=tolerance, model=first.model, margins=margins)
        return findings

    @staticmethod
    def _draws_random_numbers(context: Context, example: Example, reference: Config, first: Any) -> bool:
        """Whether the output on the reference device changes with the seed alone."""
        with tf32_disabled(), exact_attention():
            return seed_dependence(context.fresh_model, context.target, example, reference, first) is not None


_STREAMS = (
    "The model draws random numbers even in eval mode (another seed changes its output on the "
    "first device), and each device's generator gives its own stream from one seed: draw on the "
    "CPU and move the result (torch.randn(shape).to(x.device)) so the devices agree, or declare "
    "Spec(skip={'device_agreement': ...})."
)
