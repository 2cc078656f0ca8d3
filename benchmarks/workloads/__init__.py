"""Domain workloads of the node benchmark: one full training step (forward, loss, backward,
optimizer) of a model typical of a domain, on synthetic data made once on the device.

    healthcare  unet3d     3D U-Net segmentation of CT-like volumes (MLPerf 3D U-Net family)
    space       satseg     2D U-Net segmentation of 13-band satellite tiles
    defence     detector   single-stage (CenterNet-style) object detection on large images
    defence     sar        radar/RF signal classification of complex I/Q samples (1D ResNet)
    security    logformer  transformer encoder over log-event sequences (masked-event prediction)

Usage (the contract with the harness)::

    from benchmarks.workloads import WORKLOADS, build_workload
    wl = build_workload("unet3d", torch.device("cpu"), torch.bfloat16, batch_size=4)
    loss = wl.step()             # returns the loss tensor; the caller synchronises and times
    wl.items_per_step, wl.unit   # e.g. 4, "samples" (tokens for logformer)
    wl.params, wl.flops_per_step, wl.config

Defaults are small (one step well under a second on a 2-core CPU); `preset="full"` gives the
realistic sizes each module documents, and any size can be set on its own. Errors:

    ValueError
    └── WorkloadConfigError   unknown workload or param, invalid value, unusable dtype

`python -m benchmarks.workloads.measure` times every default workload on this machine.
"""

from ._base import Workload, WorkloadConfigError
from ._registry import WORKLOADS, build_workload

__all__ = ["WORKLOADS", "Workload", "WorkloadConfigError", "build_workload"]
