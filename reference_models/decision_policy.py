"""DecisionPolicy: a Decision Transformer, whose forward needs four inputs and requires none.

Not a founding model: the counterpart of a wrong inference met on a model from a library
people use. Hugging Face's ``DecisionTransformerModel.forward(states=None, actions=None,
rewards=None, returns_to_go=None, timesteps=None, attention_mask=None, ...)`` requires
nothing, yet embeds states, actions, returns-to-go and timesteps, interleaves them as
``(R_1, s_1, a_1, R_2, ...)`` and attends causally over the result: called with any one of
them missing it raises. Inference gives the first argument; the companion probe used to add
one more at most, so every example raised. It now tries the arguments that can be inferred
together (leaving out one that breaks the call: ``attention_mask`` reads as features of the
layer it is handed to), keeps those the call cannot run without, and makes the vectors
sequences of the timesteps' length. ``rewards`` is accepted and never read, as there.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DecisionPolicy"]


class _CausalBlock(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, attention_mask):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        steps = x.shape[1]
        allowed = torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()
        allowed = allowed & attention_mask[:, None, :].bool()
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        return x + self.out(F.softmax(scores, dim=-1) @ v)


class DecisionPolicy(nn.Module):
    def __init__(self, state_dim=4, act_dim=2, hidden_size=8, max_ep_len=16):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed_state = nn.Linear(state_dim, hidden_size)
        self.embed_action = nn.Linear(act_dim, hidden_size)
        self.embed_return = nn.Linear(1, hidden_size)
        self.embed_timestep = nn.Embedding(max_ep_len, hidden_size)
        self.encoder = _CausalBlock(hidden_size)
        self.predict_action = nn.Linear(hidden_size, act_dim)

    def forward(self, states=None, actions=None, rewards=None, returns_to_go=None, timesteps=None, attention_mask=None):
        batch, steps = states.shape[0], states.shape[1]
        if attention_mask is None:
            attention_mask = torch.ones(batch, steps, dtype=torch.long, device=states.device)
        time = self.embed_timestep(timesteps)
        tokens = (self.embed_return(returns_to_go) + time, self.embed_state(states) + time, self.embed_action(actions) + time)
        stacked = torch.stack(tokens, dim=1).permute(0, 2, 1, 3).reshape(batch, 3 * steps, self.hidden_size)
        mask = torch.stack((attention_mask,) * 3, dim=1).permute(0, 2, 1).reshape(batch, 3 * steps)
        h = self.encoder(stacked, mask).reshape(batch, steps, 3, self.hidden_size).permute(0, 2, 1, 3)
        return torch.tanh(self.predict_action(h[:, 1]))  # the next action, from each state's token
