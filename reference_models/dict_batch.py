"""Classifiers that take their batch as a dict, as training loops hand it over:
``forward(self, batch)`` reading ``batch["tokens"]`` and ``batch["lengths"]`` (a GRU), or a
tokenizer's ``batch["input_ids"]`` and ``batch["attention_mask"]`` (a masked mean of
embeddings).

What it proves: zero-config inputs for a dict of inputs. Each entry read by key is inferred
as an argument of its own would be (token ids for the embedding, lengths by their name) and
the dict is drawn as ``fixed_dictionaries``; ``batch_invariance`` cuts it entry by entry, and
``padding_invariance`` reads the padding from ``batch["lengths"]`` or
``batch["attention_mask"]``. Drawn as one tensor, ``batch["tokens"]`` raised on every example;
inferred from its use alone, ``batch["attention_mask"]`` was a float tensor of another length,
and the model raised on every example: beside token ids it is their mask, as an
``attention_mask`` argument is.

``DictFramesClassifier`` reads float frames (``batch["frames"]``, an audio or sensor
collate function's ``(batch, time, features)``) and their count under a name of its own,
``batch["n_valid"]``, which its ``__dyncheck__`` declares as
``lengths="batch['n_valid']"``. Its frames were drawn without a time axis, as if nothing
beside them held lengths (an argument's siblings were looked for among forward's
arguments only), and the model raised on every example.

``NestedBatchClassifier`` takes a multimodal batch, a dict inside the dict:
``text = batch["text"]``, then ``text["input_ids"]`` and ``text["attention_mask"]``, beside
``batch["image"]`` features. Read one level deep, ``batch["text"]`` was drawn as one tensor
and the model raised on every example; the inner dict is now inferred as the outer one is,
``batch_invariance`` cuts it entry by entry and ``padding_invariance`` finds its mask.

``FeaturesPooler`` is a sentence-transformers-style module: it reads ``features["input_ids"]``
and ``features["attention_mask"]``, adds ``features["sentence_embedding"]`` and hands the
dict back. An entry forward writes is no input, and returning the dict is no other use of
it; before, the dict was drawn as one tensor and every check crashed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = [
    "DictBatchClassifier", "DictFramesClassifier", "DictMaskedClassifier", "FeaturesPooler", "NestedBatchClassifier",
]


class DictBatchClassifier(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6, hidden=6, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, batch):
        packed = pack_padded_sequence(
            self.embed(batch["tokens"]), batch["lengths"], batch_first=True, enforce_sorted=False
        )
        _, h = self.rnn(packed)
        return self.head(h[-1])


class DictMaskedClassifier(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.head = nn.Linear(embed_dim, classes)

    def forward(self, batch):
        emb = self.embed(batch["input_ids"])
        mask = batch["attention_mask"].unsqueeze(-1).to(emb.dtype)
        return self.head((emb * mask).sum(1) / mask.sum(1).clamp(min=1))


class FeaturesPooler(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.dense = nn.Linear(embed_dim, embed_dim)

    def forward(self, features):
        emb = self.embed(features["input_ids"])
        mask = features["attention_mask"].unsqueeze(-1).to(emb.dtype)
        features["sentence_embedding"] = torch.tanh(self.dense((emb * mask).sum(1) / mask.sum(1).clamp(min=1)))
        return features


class DictFramesClassifier(nn.Module):
    __dyncheck__ = {"lengths": "batch['n_valid']"}

    def __init__(self, features=8, hidden=6, classes=3):
        super().__init__()
        self.proj = nn.Linear(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, batch):
        h = torch.tanh(self.proj(batch["frames"]))
        n_valid = batch["n_valid"]
        mask = (torch.arange(h.shape[1], device=h.device)[None, :] < n_valid[:, None]).unsqueeze(-1)
        return self.head((h * mask).sum(1) / n_valid[:, None].to(h.dtype))


class NestedBatchClassifier(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6, image_features=12, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.image = nn.Linear(image_features, embed_dim)
        self.head = nn.Linear(2 * embed_dim, classes)

    def forward(self, batch):
        text = batch["text"]
        emb = self.embed(text["input_ids"])
        mask = text["attention_mask"].unsqueeze(-1).to(emb.dtype)
        pooled = (emb * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(torch.cat([pooled, self.image(batch["image"])], dim=-1))
