"""A Hydra app whose --multirun sweep runs through aifsdk (one job array on Slurm sites).

    python examples/hydra_sweep/my_app.py --multirun hydra/launcher=aifsdk x=1,2,3
    python examples/hydra_sweep/my_app.py --multirun hydra/launcher=aifsdk site=slurm x=1,2,3
    python examples/hydra_sweep/my_app.py --multirun hydra/launcher=aifsdk site=slurm hydra.launcher.wait=false x=1,2,3

Each point writes result.txt in its own Hydra output folder (hydra.sweep.dir/<job number>).
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> int:
    value = int(cfg.x) ** 2
    where = os.environ.get("SLURMD_NODENAME") or "this machine"
    out = Path(HydraConfig.get().runtime.output_dir) / "result.txt"
    out.write_text(f"x={cfg.x} squared={value} on {where}\n")
    print(out.read_text(), end="")
    return value


if __name__ == "__main__":
    main()
