"""Invariant: refactor_agreement

The fused self-attention (:mod:`reference_models.fused_attention`) with a mis-mapped
weight in its state map: the old ``q`` projection is copied where ``k`` belongs, a
copy-paste slip that loads without complaint (the shapes fit). The model is right, the
mapping is not: ``refactor_agreement`` names ``qkv`` as the first diverging module (its
input agrees, its output is not the old ``q``, ``k`` and ``v`` outputs concatenated) and
notes that no new parameter is computed from the old ``k.weight`` and ``k.bias``.

A correct mapping concatenates ``q``, ``k`` and ``v``
(:func:`reference_models.fused_attention.fuse_qkv`).
"""

from __future__ import annotations

import torch

from reference_models.fused_attention import FusedAttention as _Fused

__all__ = ["Model", "fuse_qkv"]


def fuse_qkv(old):
    new = {key: value for key, value in old.items() if not key.startswith(("q.", "k.", "v."))}
    for part in ("weight", "bias"):
        # the bug: q where k belongs
        new[f"qkv.{part}"] = torch.cat([old[f"q.{part}"], old[f"q.{part}"], old[f"v.{part}"]])
    return new


class Model(_Fused):
    __dyncheck__ = {**_Fused.__dyncheck__, "state_map": fuse_qkv}
