"""Hydra support: ``site=lumi-g`` and ``resources.nodes=2`` in your own Hydra app.

    # conf/train.yaml
    defaults:
      - site: local            # any profile `aifsdk sites` lists
      - resources: default     # every aifsdk.Resources field, null (the site decides)
      - _self_
    resources:
      time: 2h

    # train.py
    import hydra, aifsdk
    from aifsdk.hydra import options, register

    register()                 # puts the site profiles and the resources schema in Hydra's ConfigStore

    @hydra.main(config_path="conf", config_name="train", version_base="1.3")
    def main(cfg):
        job = aifsdk.submit(train, dict(cfg.model), **options(cfg))

    python train.py site=lumi-g resources.nodes=2 resources.gpus_per_node=8 resources.account=project_465000001

``register()`` stores every site profile (shipped and your own, see ``aifsdk sites``) in the
config group ``site`` and a node of every :class:`aifsdk.Resources` field (all null) as
``resources: default``. ``options(cfg)`` turns the composed ``site`` and ``resources`` into
keyword arguments of :func:`aifsdk.plan` / :func:`aifsdk.submit`. A profile is site data: change
one with a file in the user config folder, not with ``site.*`` overrides (refused, with the fix).
"""

from __future__ import annotations

from typing import Any

import yaml

from ._errors import Problem, ProfileError, RequestError
from ._profile import load_site, site_files, user_config_dir
from ._resources import Resources

__all__ = ["options", "register"]


def _profile_data(name: str) -> dict[str, Any]:
    data = yaml.safe_load(site_files()[name].read_text()) or {}
    return {**data, "name": name}


def register() -> list[str]:
    """Store the site profiles (group ``site``) and ``resources: default`` in Hydra's ConfigStore.

    Returns the site names stored; a profile that breaks the schema is left out (``aifsdk
    sites`` says why). Call it before ``@hydra.main`` runs (at import time of your app).
    """
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    stored = []
    for name in sorted(site_files()):
        try:
            load_site(name)
        except ProfileError:
            continue
        store.store(group="site", name=name, node=_profile_data(name))
        stored.append(name)
    fields: dict[str, Any] = {key: None for key in Resources.field_names()}
    fields["extra"] = {}
    store.store(group="resources", name="default", node=fields)
    return stored


def options(cfg: Any) -> dict[str, Any]:
    """``site`` and ``resources`` of a composed config, as keyword arguments of plan/submit.

    ``cfg.site`` is a composed profile (``site=<name>``) or a plain name; ``cfg.resources`` holds
    :class:`aifsdk.Resources` fields (null ones are left to the site). Unknown keys and changed
    profile keys raise :class:`aifsdk.RequestError` naming each.
    """
    from omegaconf import DictConfig, OmegaConf

    problems: list[Problem] = []
    site_node = cfg.get("site") if isinstance(cfg, DictConfig) else (cfg or {}).get("site")
    if site_node is None:
        raise RequestError([Problem("site", None, "a site in the config (defaults: [site: <name>])",
                                    "add `- site: local` to the defaults list and call aifsdk.hydra.register() first")])
    if isinstance(site_node, str):
        name = site_node
    else:
        composed = OmegaConf.to_container(site_node, resolve=True) if isinstance(site_node, DictConfig) else dict(site_node)
        name = str(composed.get("name", ""))
        if name in site_files():
            shipped = _profile_data(name)
            changed = sorted(k for k in set(composed) | set(shipped) if composed.get(k) != shipped.get(k))
            if changed:
                problems.append(Problem(f"site.{changed[0]}", composed.get(changed[0]), f"site {name} as its profile says (changed: {', '.join(changed)})",
                                        f"change a profile with a file {user_config_dir() / 'site' / (name + '.yaml')}; "
                                        "adjust the request with resources.* (e.g. resources.partition=..., resources.time=...)"))
        elif not name:
            problems.append(Problem("site", composed, "a profile registered by aifsdk.hydra.register() (it carries its name)",
                                    "call aifsdk.hydra.register() before @hydra.main, and select it with site=<name>"))
    raw = cfg.get("resources") or {}
    resources = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else dict(raw)
    allowed = Resources.field_names()
    for key in sorted(set(resources) - set(allowed)):
        problems.append(Problem(f"resources.{key}", resources[key], f"one of {', '.join(allowed)}", "use a Resources field; other sbatch options go in resources.extra"))
    if problems:
        raise RequestError(problems, site=name or None)
    out: dict[str, Any] = {"site": name}
    out.update({k: v for k, v in resources.items() if v is not None and v != {}})
    return out
