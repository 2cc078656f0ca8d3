"""Security workload `logformer`: a transformer encoder over sequences of log events, trained by
masked-event prediction for anomaly detection (the LogBERT recipe: events whose masked
prediction is unlikely mark an anomalous session).

Model: event-token embedding plus a learnt positional embedding, `nn.TransformerEncoder`
(batch_first, pre-norm, GELU), a final layer norm and a linear head over the event vocabulary.
As in BERT, a fixed number of positions per sequence (round(mask_prob * seq_len)) is masked and
only those are predicted (cross-entropy), so every shape is known in advance.

Synthetic sessions: each sequence follows one of 16 random event templates, with 5 % of its
events replaced at random (the "anomalies"); ids 0 and 1 are padding and [MASK].

Sizes: defaults batch 8 x 128 events, d_model 128, 2 layers, 4 heads, vocabulary 512 (CPU).
`preset="full"`: BERT-base shapes (12 layers, d_model 768, 12 heads, feed-forward 3072,
vocabulary 30522, sequences of 512, batch 32). The unit is tokens: batch_size * seq_len per step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._base import Batch, Synth, WorkloadSpec, positive

MASK_ID = 1
FIRST_EVENT_ID = 2
TEMPLATES = 16

LOGFORMER_DEFAULTS = {
    "batch_size": 8,
    "seq_len": 128,
    "vocab_size": 512,
    "d_model": 128,
    "num_layers": 2,
    "num_heads": 4,
    "ff_dim": 512,
    "dropout": 0.1,
    "mask_prob": 0.15,
}
LOGFORMER_FULL = {
    "batch_size": 32,
    "seq_len": 512,
    "vocab_size": 30522,
    "d_model": 768,
    "num_layers": 12,
    "num_heads": 12,
    "ff_dim": 3072,
}


class LogFormer(nn.Module):
    """Embeddings, a pre-norm transformer encoder and a vocabulary head on the masked positions."""

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        d = cfg["d_model"]
        self.tokens = nn.Embedding(cfg["vocab_size"], d)
        self.positions = nn.Embedding(cfg["seq_len"], d)
        self.dropout = nn.Dropout(cfg["dropout"])
        layer = nn.TransformerEncoderLayer(
            d, cfg["num_heads"], cfg["ff_dim"], cfg["dropout"], activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg["num_layers"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg["vocab_size"])

    def forward(self, tokens: torch.Tensor, masked_at: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        hidden = self.encoder(self.dropout(self.tokens(tokens) + self.positions(pos)))
        picked = hidden.gather(1, masked_at[:, :, None].expand(-1, -1, hidden.shape[-1]))
        return self.head(self.norm(picked))


def n_masked(cfg: dict[str, Any]) -> int:
    return max(1, round(cfg["mask_prob"] * cfg["seq_len"]))


def _sessions(cfg: dict[str, Any], synth: Synth) -> Batch:
    b, s, v = cfg["batch_size"], cfg["seq_len"], cfg["vocab_size"]
    templates = synth.randint(FIRST_EVENT_ID, v, TEMPLATES, s)
    events = templates[synth.randint(0, TEMPLATES, b)]
    anomalous = synth.rand(b, s) < 0.05
    events = torch.where(anomalous, synth.randint(FIRST_EVENT_ID, v, b, s), events)
    masked_at = synth.rand(b, s).argsort(dim=1)[:, : n_masked(cfg)]
    targets = events.gather(1, masked_at)
    inputs = events.scatter(1, masked_at, MASK_ID)
    return {"tokens": inputs, "masked_at": masked_at, "targets": targets}


def _loss(model: nn.Module, batch: Batch, cfg: dict[str, Any]) -> torch.Tensor:
    logits = model(batch["tokens"], batch["masked_at"])
    return F.cross_entropy(logits.float().flatten(0, 1), batch["targets"].flatten())


def _check(cfg: dict[str, Any]) -> list[str]:
    problems = positive(cfg, "batch_size", "seq_len", "d_model", "num_layers", "num_heads", "ff_dim")
    if cfg["vocab_size"] <= FIRST_EVENT_ID:
        problems.append(
            f"vocab_size={cfg['vocab_size']}: must be > {FIRST_EVENT_ID} (ids 0, 1 are padding and [MASK]). Fix: use vocab_size>=3"
        )
    if cfg["num_heads"] > 0 and cfg["d_model"] > 0 and cfg["d_model"] % cfg["num_heads"]:
        problems.append(
            f"d_model={cfg['d_model']}: must be a multiple of num_heads={cfg['num_heads']}. "
            f"Fix: use d_model={cfg['d_model'] // cfg['num_heads'] * cfg['num_heads'] or cfg['num_heads']} or another num_heads"
        )
    if not 0 <= cfg["dropout"] < 1:
        problems.append(f"dropout={cfg['dropout']}: must be in [0, 1). Fix: use dropout=0.1 (or 0 to disable)")
    if not 0 < cfg["mask_prob"] < 1:
        problems.append(f"mask_prob={cfg['mask_prob']}: must be in (0, 1). Fix: use mask_prob=0.15 (BERT's value)")
    return problems


LOGFORMER = WorkloadSpec(
    name="logformer",
    domain="security",
    unit="tokens",
    description="transformer encoder over log-event sequences, masked-event prediction for anomaly detection (LogBERT-style)",
    defaults=LOGFORMER_DEFAULTS,
    full=LOGFORMER_FULL,
    check=_check,
    make_model=LogFormer,
    make_batch=_sessions,
    loss=_loss,
    items_per_step=lambda cfg: cfg["batch_size"] * cfg["seq_len"],
    derived=lambda cfg: {"masked_per_sequence": n_masked(cfg), "item": "one log event (token)"},
)
