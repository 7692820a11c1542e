"""TinyCausalLM: a causal language model in the Hugging Face style, without transformers.

What it keeps of that style, since this is what dyncheck must handle:

* a config dataclass the constructor takes (``TinyCausalLM(config)``);
* ``forward(input_ids=None, attention_mask=None, labels=None, past_key_values=None,
  use_cache=None, encoder_hidden_states=None, return_dict=None)``: every argument
  optional, token ids in ``[0, vocab_size)``, an attention mask of 1s (tokens) and 0s
  (padding);
* a ``ModelOutput``-like result: an ``OrderedDict`` that is also a dataclass, whose
  ``None`` fields are left out of the mapping (``loss`` only with ``labels``), with
  ``.logits`` and a ``past_key_values`` cache of ``(key, value)`` tuples per block;
* the output embedding tied to the input embedding, and ``get_input_embeddings()``;
* cross-attention (``config.add_cross_attention``) that runs only when
  ``encoder_hidden_states`` is given: :data:`CROSS_ATTENTION_SPEC` is the few lines a
  user writes for it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import dyncheck
from dyncheck.strategies import tensors


@dataclass
class TinyLMConfig:
    vocab_size: int = 40
    hidden_size: int = 16
    num_attention_heads: int = 2
    num_hidden_layers: int = 2
    max_position_embeddings: int = 12
    layer_norm_epsilon: float = 1e-5
    use_cache: bool = True
    add_cross_attention: bool = False


class ModelOutput(OrderedDict):
    """The shape of ``transformers.utils.ModelOutput``: subclasses are dataclasses; the
    fields that are not None are also the mapping's items, in field order, and an
    integer index reads the tuple of those."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                self[f.name] = value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.keys() and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return dict(self.items())[key]
        return self.to_tuple()[key]

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self[k] for k in self.keys())


@dataclass
class CausalLMOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None


class _Attention(nn.Module):
    def __init__(self, config: TinyLMConfig, *, causal: bool) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.causal = causal
        size = config.hidden_size
        self.q_proj = nn.Linear(size, size)
        self.k_proj = nn.Linear(size, size)
        self.v_proj = nn.Linear(size, size)
        self.out_proj = nn.Linear(size, size)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        batch, length, size = t.shape
        return t.view(batch, length, self.heads, size // self.heads).transpose(1, 2)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        layer_past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        source = hidden if context is None else context
        q = self._split(self.q_proj(hidden))
        k = self._split(self.k_proj(source))
        v = self._split(self.v_proj(source))
        if layer_past is not None:
            k, v = torch.cat([layer_past[0], k], dim=-2), torch.cat([layer_past[1], v], dim=-2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        allowed = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device)
        if self.causal:
            # query i (after the cached positions) sees keys up to its own position
            allowed = allowed.tril(k.shape[-2] - q.shape[-2])
        allowed = allowed.expand(scores.shape)
        if attention_mask is not None:
            allowed = allowed & attention_mask[:, None, None, :].bool()
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).flatten(2)
        return self.out_proj(mixed), (k, v)


class _Block(nn.Module):
    def __init__(self, config: TinyLMConfig) -> None:
        super().__init__()
        size, eps = config.hidden_size, config.layer_norm_epsilon
        self.ln_1 = nn.LayerNorm(size, eps=eps)
        self.attn = _Attention(config, causal=True)
        if config.add_cross_attention:
            self.ln_cross = nn.LayerNorm(size, eps=eps)
            self.crossattention = _Attention(config, causal=False)
        self.ln_2 = nn.LayerNorm(size, eps=eps)
        self.fc = nn.Linear(size, 4 * size)
        self.proj = nn.Linear(4 * size, size)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        layer_past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attended, present = self.attn(self.ln_1(hidden), attention_mask, layer_past=layer_past)
        hidden = hidden + attended
        if encoder_hidden_states is not None:
            # cross-attention runs only when the caller hands in an encoder's states
            crossed, _ = self.crossattention(self.ln_cross(hidden), context=encoder_hidden_states)
            hidden = hidden + crossed
        hidden = hidden + self.proj(F.gelu(self.fc(self.ln_2(hidden))))
        return hidden, present


class TinyCausalLM(nn.Module):
    # No step reads a later one: causality checks it.
    __dyncheck__ = {"causal": True}

    def __init__(self, config: TinyLMConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.wpe = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.h = nn.ModuleList([_Block(config) for _ in range(config.num_hidden_layers)])
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as tie_word_embeddings does

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        past_key_values: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None,
        use_cache: bool | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> CausalLMOutput | tuple[torch.Tensor, ...]:
        if input_ids is None:
            raise ValueError("You have to specify input_ids")
        use_cache = self.config.use_cache if use_cache is None else use_cache
        past_length = past_key_values[0][0].shape[-2] if past_key_values is not None else 0
        positions = torch.arange(past_length, past_length + input_ids.shape[1], device=input_ids.device)
        hidden = self.wte(input_ids) + self.wpe(positions)
        presents: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
        for index, block in enumerate(self.h):
            layer_past = past_key_values[index] if past_key_values is not None else None
            hidden, present = block(
                hidden, attention_mask, encoder_hidden_states=encoder_hidden_states, layer_past=layer_past
            )
            if use_cache:
                presents += (present,)
        logits = self.lm_head(self.ln_f(hidden))
        loss = None
        if labels is not None:
            # predict token t + 1 from the tokens up to t; -100 marks positions to ignore
            loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100
            )
        output = CausalLMOutput(loss=loss, logits=logits, past_key_values=presents or None)
        return output if return_dict is not False else output.to_tuple()


def tiny_decoder_with_cross_attention() -> TinyCausalLM:
    """The decoder half of an encoder-decoder: every block has cross-attention."""
    return TinyCausalLM(TinyLMConfig(add_cross_attention=True))


#: Cross-attention runs only with ``encoder_hidden_states``: giving it is the one line
#: this model needs (the token ids and their mask are still inferred).
CROSS_ATTENTION_SPEC = dyncheck.Spec(
    tiny_decoder_with_cross_attention,
    inputs={
        "encoder_hidden_states": tensors(shape=("batch", 5, 16)),
    },
)
