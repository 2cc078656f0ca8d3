"""Defence workload `detector`: single-stage, anchor-free object detection on large images.

A CenterNet-style detector (Zhou et al., "Objects as Points", 2019): a convolutional backbone
down to stride 32 (a stride-2 stem, then four stages of a stride-2 and a stride-1 3x3 convolution
with batch norm, widths base, 2*base, 4*base, 8*base, 8*base), three stride-2 transposed
convolutions back to stride 4, and three heads on the stride-4 map: a per-class centre heatmap
(penalty-reduced focal loss), the box size and the sub-cell centre offset (L1 at object centres,
size weighted 0.1).

Synthetic scenes: `objects_per_image` boxes per image with random class, centre and size; each
box is painted into the image with its class colour over noise, and the targets (Gaussian centre
heatmaps, sizes, offsets, centre mask) are rendered once at build time on the device.

Sizes: defaults 128x128 images, batch 2, 10 classes (CPU). `preset="full"`: 1024x1024 tiles (the
size of xView/DOTA aerial tiles), 60 classes (xView), 64 objects per image, widths 64..512, batch 8.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._base import Batch, Synth, WorkloadSpec, divisible, positive

STRIDE = 4  # output stride of the heads
BACKBONE_STRIDE = 32

DETECTOR_DEFAULTS = {
    "batch_size": 2,
    "image_size": 128,
    "in_channels": 3,
    "num_classes": 10,
    "objects_per_image": 8,
    "base_channels": 16,
}
DETECTOR_FULL = {"batch_size": 8, "image_size": 1024, "num_classes": 60, "objects_per_image": 64, "base_channels": 64}


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _head(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1))


class CenterNet(nn.Module):
    """Backbone to stride 32, deconvolutions to stride 4, heatmap/size/offset heads."""

    def __init__(self, in_channels: int, num_classes: int, base: int):
        super().__init__()
        widths = [base, 2 * base, 4 * base, 8 * base, 8 * base]
        layers = [_conv_bn(in_channels, base, stride=2)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [_conv_bn(cin, cout, stride=2), _conv_bn(cout, cout)]
        self.backbone = nn.Sequential(*layers)
        ups = []
        for cin, cout in [(8 * base, 4 * base), (4 * base, 2 * base), (2 * base, base)]:
            ups += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.neck = nn.Sequential(*ups)
        self.heatmap = _head(base, num_classes)
        self.size = _head(base, 2)
        self.offset = _head(base, 2)
        with torch.no_grad():  # start with a low prior of an object everywhere (CenterNet's -2.19)
            self.heatmap[-1].bias.fill_(-2.19)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat = self.neck(self.backbone(x))
        return self.heatmap(feat), self.size(feat), self.offset(feat)


def _scenes(cfg: dict[str, Any], synth: Synth) -> Batch:
    """Random boxes, the images they are painted into and the CenterNet targets."""
    b, k, c, side = cfg["batch_size"], cfg["objects_per_image"], cfg["num_classes"], cfg["image_size"]
    grid = side // STRIDE
    dev = synth.device
    cls = synth.randint(0, c, b, k)
    wh = (0.04 + 0.16 * synth.rand(b, k, 2)) * side  # box width/height: 4 % to 20 % of the side, pixels
    centre = wh / 2 + synth.rand(b, k, 2) * (side - wh)  # boxes inside the image
    colours = synth.randn(c, cfg["in_channels"])
    ys = torch.arange(side, device=dev, dtype=torch.float32)
    grid_c = torch.arange(grid, device=dev, dtype=torch.float32)
    image = 0.5 * synth.randn(b, cfg["in_channels"], side, side)
    heatmap = torch.zeros(b, c, grid, grid, device=dev)
    size_t = torch.zeros(b, 2, grid, grid, device=dev)
    offset_t = torch.zeros(b, 2, grid, grid, device=dev)
    mask = torch.zeros(b, 1, grid, grid, device=dev)
    flat = grid * grid
    for j in range(k):  # one object of every image at a time: memory stays O(batch * classes * grid^2)
        cx, cy = centre[:, j, 0], centre[:, j, 1]
        w, h = wh[:, j, 0], wh[:, j, 1]
        inside_x = ((ys[None] - cx[:, None]).abs() <= w[:, None] / 2).float()
        inside_y = ((ys[None] - cy[:, None]).abs() <= h[:, None] / 2).float()
        box = inside_y[:, :, None] * inside_x[:, None, :]  # (b, side, side)
        image = image + box[:, None] * colours[cls[:, j]][:, :, None, None]
        gx, gy = (cx / STRIDE).floor(), (cy / STRIDE).floor()
        sigma = (torch.minimum(w, h) / STRIDE / 6).clamp(min=0.5)
        dist2 = (grid_c[None, None, :] - gx[:, None, None]) ** 2 + (grid_c[None, :, None] - gy[:, None, None]) ** 2
        gauss = torch.exp(-dist2 / (2 * sigma[:, None, None] ** 2))  # exactly 1 at the centre cell
        onehot = (cls[:, j, None] == torch.arange(c, device=dev)).float()
        heatmap = torch.maximum(heatmap, onehot[:, :, None, None] * gauss[:, None])
        index = (gy * grid + gx).long()[:, None, None].expand(b, 2, 1)
        size_t = size_t.view(b, 2, flat).scatter(2, index, torch.stack([w, h], 1)[:, :, None] / STRIDE).view(b, 2, grid, grid)
        offset_t = offset_t.view(b, 2, flat).scatter(2, index, torch.stack([cx / STRIDE - gx, cy / STRIDE - gy], 1)[:, :, None])
        offset_t = offset_t.view(b, 2, grid, grid)
        mask = mask.view(b, 1, flat).scatter(2, index[:, :1], 1.0).view(b, 1, grid, grid)
    return {"image": image, "heatmap": heatmap, "size": size_t, "offset": offset_t, "mask": mask}


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), normalised by the object count."""
    p = logits.float().sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = (target >= 1 - 1e-6).float()
    pos_term = torch.log(p) * (1 - p) ** 2 * pos
    neg_term = torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - pos)
    return -(pos_term.sum() + neg_term.sum()) / pos.sum().clamp(min=1)


def detection_loss(model: nn.Module, batch: Batch, cfg: dict[str, Any]) -> torch.Tensor:
    heat, size, offset = model(batch["image"])
    mask = batch["mask"]
    n = mask.sum().clamp(min=1)
    size_l1 = ((size.float() - batch["size"]).abs() * mask).sum() / n
    offset_l1 = ((offset.float() - batch["offset"]).abs() * mask).sum() / n
    return focal_loss(heat, batch["heatmap"]) + 0.1 * size_l1 + offset_l1


def _check(cfg: dict[str, Any]) -> list[str]:
    problems = positive(cfg, "batch_size", "image_size", "in_channels", "num_classes", "objects_per_image", "base_channels")
    problems += divisible("image_size", cfg["image_size"], BACKBONE_STRIDE, "the backbone halves it 5 times")
    return problems


DETECTOR = WorkloadSpec(
    name="detector",
    domain="defence",
    unit="samples",
    description="single-stage CenterNet-style object detection on large images (heatmap focal loss + box size/offset L1)",
    defaults=DETECTOR_DEFAULTS,
    full=DETECTOR_FULL,
    check=_check,
    make_model=lambda cfg: CenterNet(cfg["in_channels"], cfg["num_classes"], cfg["base_channels"]),
    make_batch=_scenes,
    loss=detection_loss,
    derived=lambda cfg: {"output_stride": STRIDE, "item": f"one {cfg['image_size']}x{cfg['image_size']} image"},
)
