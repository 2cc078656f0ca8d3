from __future__ import annotations

from pathlib import Path

import pytest

import aifsdk
from aifsdk._profile import parse_profile, shipped_config_dir, site_files


def test_every_shipped_profile_loads() -> None:
    files = site_files()
    assert {"local", "debug", "slurm"} <= set(files)
    for name in files:
        profile = aifsdk.load_site(name)
        assert profile.name == name
        assert profile.sources, f"{name}: every profile names its sources"


def test_configs_ship_inside_the_wheel(tmp_path: Path) -> None:
    """configs/ must be readable where only the installed package exists (compute nodes)."""
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(repo)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("aifsdk-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "aifsdk/configs/site/local.yaml" in names
    assert "aifsdk/configs/site/slurm.yaml" in names
    assert shipped_config_dir().joinpath("site", "local.yaml").is_file()


def test_schema_reports_every_problem_with_its_key() -> None:
    text = """
executor: pbs
nodes: {gpus: four}
billing: {unit: euros}
partitions:
  gpu: {max_time: "soon", max_nodes: 2, colour: blue}
  small: {default: true}
  big: {default: true}
"""
    with pytest.raises(aifsdk.ProfileError) as info:
        parse_profile(text, name="bad", source="bad.yaml")
    message = str(info.value)
    for fragment in ("executor: 'pbs' is not one of", "nodes: unknown key (did you mean 'node'?)", "billing.unit: 'euros'",
                     "partitions.gpu.colour: unknown key"):
        assert fragment in message, fragment


def test_schema_semantic_checks() -> None:
    text = """
executor: slurm
partitions:
  gpu: {max_time: "soon"}
  small: {default: true}
  big: {default: true}
account: {pattern: "([a-z"}
"""
    with pytest.raises(aifsdk.ProfileError) as info:
        parse_profile(text, name="bad", source="bad.yaml")
    message = str(info.value)
    assert "partitions.gpu.max_time" in message
    assert "several have default: true (small, big)" in message
    assert "account.pattern" in message


def test_user_profile_adds_and_overrides(clean_env: Path) -> None:
    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "mycluster.yaml").write_text("executor: slurm\ntitle: Mine\nsources: [me]\n")
    (user / "local.yaml").write_text("executor: local\ntitle: My local\ndefault_time: 7\nsources: [me]\n")
    assert aifsdk.load_site("mycluster").title == "Mine"
    assert aifsdk.load_site("local").title == "My local"
    assert aifsdk.plan(print).resources.time == "00:07:00"


def test_unknown_site_names_the_choices() -> None:
    with pytest.raises(aifsdk.SiteNotFoundError) as info:
        aifsdk.plan(print, site="slrum")
    assert "did you mean slurm" in str(info.value)
    assert isinstance(info.value, ValueError)
