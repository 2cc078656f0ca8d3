"""The launcher's settings (``hydra.launcher.*``), registered as ``hydra/launcher=aifsdk``."""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class AifsdkLauncherConf:
    """Where and how the sweep runs; every resource left at None comes from the site profile.

    ``site`` defaults to the app's own top-level ``site`` key (so ``site=slurm`` on the command
    line picks the site), else ``local``. ``wait: false`` returns as soon as the array is
    submitted (follow it with ``aifsdk jobs``); ``max_parallel`` caps how many run at once.
    """

    _target_: str = "hydra_plugins.aifsdk_launcher.launcher.AifsdkLauncher"
    site: str = "${oc.select:site,local}"
    wait: bool = True
    max_parallel: Optional[int] = None  # OmegaConf reads these annotations at run time
    name: Optional[str] = None
    nodes: Optional[int] = None
    gpus_per_node: Optional[int] = None
    tasks_per_node: Optional[int] = None
    cpus_per_task: Optional[int] = None
    mem_gb: Optional[float] = None
    time: Optional[str] = None
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/launcher", name="aifsdk", node=AifsdkLauncherConf, provider="aifsdk")
