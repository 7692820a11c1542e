"""CleanRL's recurrent PPO agent (``ppo_atari_lstm``'s ``get_states``): observations encoded,
then an LSTM stepped one time step at a time over ``[time, envs]``, its state zeroed for
each environment whose ``done`` flag says a new episode starts there
(``(1.0 - d).view(1, -1, 1) * state``), the flags reshaped to ``(-1, envs)``.

What it proves: zero-config inputs for an episode's done flags beside a time-major
sequence. Inferred from the LSTM whose state they scale, the flags were drawn
``[time, batch, 8]``; the reshape to ``(-1, envs)`` then gave each environment other
environments' flags, and ``batch_invariance`` failed the correct model. Done flags are one
per step and sample, drawn with the sequence's step and batch axes, from 0 to 1.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EpisodeLSTMAgent"]


class EpisodeLSTMAgent(nn.Module):
    def __init__(self, obs_dim=4, hidden=8, actions=3):
        super().__init__()
        self.network = nn.Linear(obs_dim, hidden)
        self.lstm = nn.LSTM(hidden, hidden)
        self.actor = nn.Linear(hidden, actions)

    def reset(self, d: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return (1.0 - d).view(1, -1, 1) * state

    def forward(self, x, lstm_state, done):
        hidden = torch.relu(self.network(x))
        envs = lstm_state[0].shape[1]
        hidden = hidden.reshape((-1, envs, self.lstm.input_size))
        done = done.reshape((-1, envs))
        outputs = []
        for h, d in zip(hidden, done):
            h, lstm_state = self.lstm(h.unsqueeze(0), (self.reset(d, lstm_state[0]), self.reset(d, lstm_state[1])))
            outputs.append(h)
        return self.actor(torch.flatten(torch.cat(outputs), 0, 1)), lstm_state
