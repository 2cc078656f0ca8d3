"""U-Net segmentation workloads: `unet3d` (healthcare, CT volumes) and `satseg` (space,
multispectral satellite tiles). One U-Net class serves both, in 3D or 2D.

The network follows the MLPerf Training 3D U-Net reference (KiTS19): an input block of two
3x3(x3) convolutions, `depth` down levels each opened by a stride-2 convolution, an up path of
stride-2 transposed convolutions whose output is concatenated with the encoder's skip, two
convolutions per level, and a 1x1 output convolution. Channels double per level from
`base_channels` up to `max_channels`; MLPerf uses base 32, depth 5, max 320 (32, 64, 128, 256,
320, 320) on 128^3 patches with instance norm and a Dice + cross-entropy loss.

Synthetic data is made so that the task can be learnt (the loss falls in a few steps): smoothed
random noise thresholded into contiguous regions gives the label map, and the image is a
per-class intensity (CT) or per-class spectral signature (13 Sentinel-2-like bands) plus noise.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._base import Batch, Synth, WorkloadSpec, divisible, positive


def level_channels(base: int, depth: int, cap: int) -> list[int]:
    """Channels of the levels 0..depth: base, 2*base, ... capped at `cap`."""
    return [min(base * 2**i, cap) for i in range(depth + 1)]


class _ConvNormAct(nn.Sequential):
    def __init__(self, dims: int, cin: int, cout: int, norm: str, stride: int = 1):
        conv = (nn.Conv2d, nn.Conv3d)[dims - 2]
        if norm == "instance":
            layer = (nn.InstanceNorm2d, nn.InstanceNorm3d)[dims - 2](cout, affine=True)
        else:
            layer = (nn.BatchNorm2d, nn.BatchNorm3d)[dims - 2](cout)
        super().__init__(conv(cin, cout, 3, stride=stride, padding=1, bias=False), layer, nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A 2D or 3D U-Net: `channels[i]` features at level i, level i at 1/2**i resolution."""

    def __init__(self, dims: int, in_channels: int, num_classes: int, channels: list[int], norm: str):
        super().__init__()
        up_conv = (nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 2]
        out_conv = (nn.Conv2d, nn.Conv3d)[dims - 2]
        c = channels
        self.down = nn.ModuleList([nn.Sequential(_ConvNormAct(dims, in_channels, c[0], norm), _ConvNormAct(dims, c[0], c[0], norm))])
        for i in range(1, len(c)):
            self.down.append(nn.Sequential(_ConvNormAct(dims, c[i - 1], c[i], norm, stride=2), _ConvNormAct(dims, c[i], c[i], norm)))
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for i in range(len(c) - 1, 0, -1):
            self.up.append(up_conv(c[i], c[i - 1], kernel_size=2, stride=2))
            self.merge.append(nn.Sequential(_ConvNormAct(dims, 2 * c[i - 1], c[i - 1], norm), _ConvNormAct(dims, c[i - 1], c[i - 1], norm)))
        self.head = out_conv(c[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def blob_labels(synth: Synth, batch: int, spatial: tuple[int, ...], cumulative: list[float]) -> torch.Tensor:
    """Integer label maps of contiguous regions: smoothed noise cut at normal quantiles.

    `cumulative` holds the cumulative class fractions that end each class but the last.
    """
    pool = (F.avg_pool2d, F.avg_pool3d)[len(spatial) - 2]
    field = synth.randn(batch, 1, *spatial)
    for _ in range(2):
        field = pool(field, kernel_size=5, stride=1, padding=2, count_include_pad=False)
    field = (field - field.mean()) / (field.std() + 1e-6)
    cuts = torch.special.ndtri(torch.tensor(cumulative, device=field.device))
    return torch.bucketize(field[:, 0].contiguous(), cuts)


def _one_hot(labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One-hot of `labels` shaped like the logits `like` (scatter: no data-dependent checks)."""
    return torch.zeros_like(like).scatter_(1, labels.unsqueeze(1), 1.0)


def dice_ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus (1 - mean soft Dice over the foreground classes), per sample, in fp32."""
    logits = logits.float()
    probs = logits.softmax(dim=1)
    target = _one_hot(labels, probs)
    dims = tuple(range(2, logits.ndim))
    inter = (probs * target).sum(dims)
    dice = (2 * inter + 1e-5) / (probs.sum(dims) + target.sum(dims) + 1e-5)
    return F.cross_entropy(logits, labels) + 1 - dice[:, 1:].mean()


def _channels(cfg: dict[str, Any]) -> list[int]:
    return level_channels(cfg["base_channels"], cfg["depth"], cfg["max_channels"])


def _check_unet(cfg: dict[str, Any], size_key: str, channels_key: str) -> list[str]:
    problems = positive(cfg, "batch_size", size_key, channels_key, "base_channels", "max_channels", "depth")
    if cfg["num_classes"] < 2:
        problems.append(f"num_classes={cfg['num_classes']}: must be >= 2 (background and at least one class). Fix: use num_classes>=2")
    if cfg["depth"] > 0 and cfg[size_key] > 0:
        factor = 2 ** (cfg["depth"] + 1)
        problems += divisible(
            size_key,
            cfg[size_key],
            factor,
            f"2**(depth+1) with depth={cfg['depth']}: each level halves it and the deepest keeps >= 2 per side",
        )
    if cfg["max_channels"] < cfg["base_channels"] and cfg["max_channels"] > 0:
        problems.append(
            f"max_channels={cfg['max_channels']}: must be >= base_channels={cfg['base_channels']}. Fix: raise max_channels or lower base_channels"
        )
    return problems


# --- healthcare: 3D U-Net on CT-like volumes (MLPerf 3D U-Net family) -------------------------

UNET3D_DEFAULTS = {
    "batch_size": 2,
    "patch_size": 32,
    "in_channels": 1,
    "num_classes": 3,
    "base_channels": 8,
    "max_channels": 320,
    "depth": 3,
}
#: MLPerf Training 3D U-Net (KiTS19) shapes: 128^3 patches, 32..320 channels over 5 down levels.
#: Batch 2 per device is our choice (memory headroom); NVIDIA's MLPerf v4.0 H100/H200 runs used 7
#: per GPU (global batch 56 on 8 GPUs): pass batch_size=7 to compare with their samples/s per GPU.
UNET3D_FULL = {"batch_size": 2, "patch_size": 128, "base_channels": 32, "max_channels": 320, "depth": 5}


def _unet3d_batch(cfg: dict[str, Any], synth: Synth) -> Batch:
    side = cfg["patch_size"]
    # background, kidney, tumour: about 70 %, 23 %, 7 % of voxels when num_classes=3
    k = cfg["num_classes"]
    cumulative = [0.7 + 0.3 * i / (k - 1) for i in range(k - 1)] if k > 3 else [0.7, 0.93][: k - 1]
    labels = blob_labels(synth, cfg["batch_size"], (side, side, side), cumulative)
    image = labels.unsqueeze(1).float() + 0.8 * synth.randn(cfg["batch_size"], cfg["in_channels"], side, side, side)
    return {"image": image, "labels": labels}


UNET3D = WorkloadSpec(
    name="unet3d",
    domain="healthcare",
    unit="samples",
    description="3D U-Net segmentation of CT-like volumes (MLPerf 3D U-Net family; Dice + cross-entropy, instance norm)",
    defaults=UNET3D_DEFAULTS,
    full=UNET3D_FULL,
    check=lambda cfg: _check_unet(cfg, "patch_size", "in_channels"),
    make_model=lambda cfg: UNet(3, cfg["in_channels"], cfg["num_classes"], _channels(cfg), "instance"),
    make_batch=_unet3d_batch,
    loss=lambda model, batch, cfg: dice_ce_loss(model(batch["image"]), batch["labels"]),
    derived=lambda cfg: {
        "channels": _channels(cfg),
        "item": f"one {cfg['patch_size']}^3 patch",
    },
)


# --- space: 2D U-Net on multispectral satellite tiles ----------------------------------------

SATSEG_DEFAULTS = {
    "batch_size": 4,
    "tile_size": 64,
    "bands": 13,
    "num_classes": 10,
    "base_channels": 16,
    "max_channels": 1024,
    "depth": 3,
}
#: 13-band Sentinel-2 256x256 tiles, the original U-Net widths (64..1024 over 4 levels); batch 16
#: per device is our choice, not a published benchmark's.
SATSEG_FULL = {"batch_size": 16, "tile_size": 256, "base_channels": 64, "max_channels": 1024, "depth": 4}


def _satseg_batch(cfg: dict[str, Any], synth: Synth) -> Batch:
    side, k = cfg["tile_size"], cfg["num_classes"]
    labels = blob_labels(synth, cfg["batch_size"], (side, side), [(i + 1) / k for i in range(k - 1)])
    signature = synth.randn(k, cfg["bands"])  # one spectral signature per land-cover class
    image = signature[labels].permute(0, 3, 1, 2) + 0.5 * synth.randn(cfg["batch_size"], cfg["bands"], side, side)
    return {"image": image.contiguous(), "labels": labels}


SATSEG = WorkloadSpec(
    name="satseg",
    domain="space",
    unit="samples",
    description="2D U-Net land-cover segmentation of 13-band (Sentinel-2-like) satellite tiles, per-pixel cross-entropy",
    defaults=SATSEG_DEFAULTS,
    full=SATSEG_FULL,
    check=lambda cfg: _check_unet(cfg, "tile_size", "bands"),
    make_model=lambda cfg: UNet(2, cfg["bands"], cfg["num_classes"], _channels(cfg), "batch"),
    make_batch=_satseg_batch,
    loss=lambda model, batch, cfg: F.cross_entropy(model(batch["image"]).float(), batch["labels"]),
    derived=lambda cfg: {
        "channels": _channels(cfg),
        "item": f"one {cfg['bands']}-band {cfg['tile_size']}x{cfg['tile_size']} tile",
    },
)
