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


def test_schema_checks_the_site_keys() -> None:
    """QoS, policy, billing, sources and placeholders: each mistake named with its key."""
    text = """
executor: slurm
status: announced
launcher: mpirun
partitions:
  gpu: {qos: [fast]}
qos:
  normal: {partitions: [cpu], max_time: "soon", account_pattern: "(", min_nodes: 5, max_nodes: 2}
gpu_policy: {cpus_per_gpu_max: 0}
billing: {per_node_hour: -1, shared_by: cores}
scratch_job_root: /scratch/{project}/jobs
sources:
  - plain text is still fine
  - {fact: nodes, source: docs, confidence: sure, date: "2026-10"}
  - {fact: nodes, source: docs, confidence: official, date: "Oct 2026"}
"""
    with pytest.raises(aifsdk.ProfileError) as info:
        parse_profile(text, name="bad", source="bad.yaml")
    message = str(info.value)
    assert "launcher: 'mpirun' is not one of 'srun-per-gpu', 'torchrun-per-node'" in message
    assert "billing.shared_by: 'cores' is not one of" in message
    assert "sources[1]" in message and "'sure'" in message
    with pytest.raises(aifsdk.ProfileError) as info:
        parse_profile(text.replace("launcher: mpirun", "").replace("cores", "gpus").replace("sure", "press"), name="bad", source="bad.yaml")
    message = str(info.value)
    for fragment in ("qos.normal.max_time", "qos.normal.account_pattern", "qos.normal.partitions: 'cpu'", "qos.normal: min_nodes 5",
                     "partitions.gpu.qos: 'fast'", "gpu_policy.cpus_per_gpu_max: 0 must be > 0", "billing.per_node_hour: -1",
                     "scratch_job_root: {project}", "sources[2].date: 'Oct 2026'", "notice: an announced site needs a notice"):
        assert fragment in message, fragment


def test_hardware_line_and_structured_sources() -> None:
    profile = parse_profile(
        "executor: slurm\nnode: {count: 10, gpus: 4, gpu_model: A100, gpu_mem_gb: 40, cpus: 48, cpus_usable: 46, mem_gb: 480, arch: x86_64}\n"
        "sources: [{fact: nodes, source: docs, confidence: official, date: '2026-10'}, free text]\n", name="s", source="s.yaml")
    assert profile.hardware() == "10 nodes x 4 x A100 (40 GB), 48 cores (46 usable), 480 GB, x86_64"
    assert profile.sources[0].confidence == "official" and profile.sources[1] == "free text"  # type: ignore[union-attr]


def test_schema_checks_roles_and_array_size() -> None:
    """role: general/debug/special; a default class must be general; max_array_size is a number."""
    text = """
executor: slurm
max_array_size: many
partitions:
  dev: {role: debug, default: true}
  big: {role: huge}
qos:
  dbg: {role: debug, default: true}
"""
    with pytest.raises(aifsdk.ProfileError) as info:
        parse_profile(text, name="bad", source="bad.yaml")
    message = str(info.value)
    assert "partitions.big.role: 'huge' is not one of 'general', 'debug', 'special'" in message
    assert "max_array_size: expected int, got 'many'" in message
    with pytest.raises(aifsdk.ProfileError) as info:
        parse_profile(text.replace("role: huge", "role: special").replace("many", "1001"), name="bad", source="bad.yaml")
    message = str(info.value)
    assert "partitions.dev: the default must have role general" in message and "qos.dbg: the default must have role general" in message
    good = parse_profile(text.replace("role: huge", "role: special").replace("many", "1001").replace(", default: true", ""), name="ok", source="ok.yaml")
    assert good.max_array_size == 1001 and good.partitions["dev"].role == "debug" and good.partitions["big"].role == "special"


def test_generic_slurm_site_passes_partition_debug_through() -> None:
    """Site slurm declares no classes: partition='debug' is the cluster's partition of that name."""
    plan = aifsdk.plan(["true"], site="slurm", partition="debug", snapshot=False)
    assert plan.resources.partition == "debug" and "#SBATCH --partition=debug\n" in plan.script
