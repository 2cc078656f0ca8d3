"""Defence workload `sar`: radar/RF signal classification of complex baseband I/Q samples.

The model is the 1D residual network of O'Shea, Roy and Clancy ("Over-the-air deep learning
based radio signal classification", 2018) for RadioML 2018.01A (24 modulation classes, frames of
1024 complex samples given as 2 channels, I and Q): `stacks` residual stacks, each a 1x1
convolution, two residual units of two kernel-3 convolutions and a max-pool by 2, then two
fully connected SELU layers of `hidden` units and the class layer; cross-entropy loss.

Synthetic frames: one smooth random waveform per class, rotated by a random carrier phase per
frame (as a receiver sees it) plus white noise, so the classes can be learnt.

Sizes: defaults batch 64 of 1024-sample frames (CPU). `preset="full"`: the same network
(32 filters, 6 stacks) at batch 512, a usual data-parallel batch per GPU for this dataset.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._base import Batch, Synth, WorkloadSpec, divisible, positive

SAR_DEFAULTS = {"batch_size": 64, "frame_length": 1024, "num_classes": 24, "filters": 32, "stacks": 6, "hidden": 128}
SAR_FULL = {"batch_size": 512}


class _ResidualUnit(nn.Module):
    def __init__(self, filters: int):
        super().__init__()
        self.conv1 = nn.Conv1d(filters, filters, 3, padding=1)
        self.conv2 = nn.Conv1d(filters, filters, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class IQResNet(nn.Module):
    """Residual stacks over (batch, 2, frame_length) I/Q frames, then a small classifier."""

    def __init__(self, frame_length: int, num_classes: int, filters: int, stacks: int, hidden: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(stacks):
            layers += [nn.Conv1d(2 if i == 0 else filters, filters, 1), _ResidualUnit(filters), _ResidualUnit(filters), nn.MaxPool1d(2)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(filters * (frame_length >> stacks), hidden),
            nn.SELU(),
            nn.Linear(hidden, hidden),
            nn.SELU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _frames(cfg: dict[str, Any], synth: Synth) -> Batch:
    b, n, c = cfg["batch_size"], cfg["frame_length"], cfg["num_classes"]
    prototypes = F.avg_pool1d(synth.randn(c, 2, n), kernel_size=9, stride=1, padding=4, count_include_pad=False) * 3
    labels = synth.randint(0, c, b)
    phase = synth.rand(b, 1) * 2 * torch.pi
    i, q = prototypes[labels, 0], prototypes[labels, 1]
    rotated = torch.stack([i * phase.cos() - q * phase.sin(), i * phase.sin() + q * phase.cos()], dim=1)
    return {"iq": rotated + 0.5 * synth.randn(b, 2, n), "labels": labels}


def _check(cfg: dict[str, Any]) -> list[str]:
    problems = positive(cfg, "batch_size", "frame_length", "num_classes", "filters", "stacks", "hidden")
    if cfg["stacks"] > 0:
        problems += divisible("frame_length", cfg["frame_length"], 2 ** cfg["stacks"], f"each of the stacks={cfg['stacks']} halves it")
    return problems


SAR = WorkloadSpec(
    name="sar",
    domain="defence",
    unit="samples",
    description="radar/RF signal classification of complex I/Q frames (1D residual network, RadioML 2018 sizes)",
    defaults=SAR_DEFAULTS,
    full=SAR_FULL,
    check=_check,
    make_model=lambda cfg: IQResNet(cfg["frame_length"], cfg["num_classes"], cfg["filters"], cfg["stacks"], cfg["hidden"]),
    make_batch=_frames,
    loss=lambda model, batch, cfg: F.cross_entropy(model(batch["iq"]).float(), batch["labels"]),
    derived=lambda cfg: {"item": f"one frame of {cfg['frame_length']} complex samples (I and Q channels)"},
)
