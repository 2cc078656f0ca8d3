"""The shipped site profiles (configs/site/): schema, Hydra, and requests checked against each site.

Everything here goes through ``plan``: no site profile ever submits to the local test cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import aifsdk
from aifsdk._profile import Source, parse_profile, shipped_config_dir

SHIPPED = sorted(p.stem for p in (shipped_config_dir() / "site").glob("*.yaml"))
GENERIC = {"local", "debug", "slurm"}
REAL = ["lumi-g", "jupiter-booster", "leonardo-booster", "mn5-acc", "meluxina-gpu", "karolina-gpu", "vega-gpu", "deucalion",
        "sofia", "hortense", "lucia"]
ANNOUNCED = ["lumi-ai", "jupiter-ai", "meluxina-ai", "it4lia", "hammerhai", "mn5-ai"]

# site -> (account, GPUs per node, cores per task for one task per GPU, the GPU line in the script)
TYPICAL = {
    "lumi-g": ("project_465001926", 8, 7, "#SBATCH --gpus-per-node=8"),
    "jupiter-booster": ("e-dev-2026d09-128", 4, 72, "#SBATCH --gres=gpu:4"),
    "leonardo-booster": ("EUHPC_D35_189", 4, 8, "#SBATCH --gres=gpu:4"),
    "mn5-acc": ("ehpc123", 4, 20, "#SBATCH --gres=gpu:4"),
    "meluxina-gpu": ("p200301", 4, 16, "#SBATCH --gres=gpu:4"),
    "karolina-gpu": ("EU-25-92", 8, 16, "#SBATCH --gres=gpu:8"),
    "vega-gpu": ("s24r05-03-users", 4, 32, "#SBATCH --gres=gpu:4"),
    "deucalion": ("F20240001g", 4, 32, "#SBATCH --gres=gpu:4"),
    "sofia": ("2026_001", 8, 24, "#SBATCH --gpus-per-node=8"),
    "hortense": ("2024_301", 4, 12, "#SBATCH --gpus-per-node=4"),
    "lucia": ("myproject", 4, 8, "#SBATCH --gpus-per-node=4"),
}


def train(cfg: dict) -> float:
    return 0.0


def plan(site: str, **kw):  # type: ignore[no-untyped-def]
    return aifsdk.plan(train, {}, site=site, snapshot=False, **kw)


def problems(site: str, **kw) -> list[aifsdk.Problem]:  # type: ignore[name-defined]
    with pytest.raises(aifsdk.RequestError) as info:
        plan(site, **kw)
    return info.value.problems


# -- the files --------------------------------------------------------------------------------
def test_the_expected_profiles_ship() -> None:
    assert set(REAL) | set(ANNOUNCED) | GENERIC == set(SHIPPED)
    assert set(REAL) | set(ANNOUNCED) == set(TYPICAL) | set(ANNOUNCED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_passes_the_schema(name: str) -> None:
    path = shipped_config_dir() / "site" / f"{name}.yaml"
    text = path.read_text()
    profile = parse_profile(text, name=name, source=path)
    assert profile.title and profile.sources
    if name in GENERIC:
        return
    assert f"--site {name}" in text.split("\ntitle:")[0], "the header comment says how to use it"
    assert all(isinstance(s, Source) for s in profile.sources), "real sites give source, confidence and date per fact"
    if "[unverified]" in text:
        assert any(s.confidence == "unverified" for s in profile.sources)
    if profile.status == "announced":
        assert profile.notice and profile.alternatives and not profile.partitions
        assert set(profile.alternatives) <= set(REAL)
        return
    assert profile.executor == "slurm" and profile.node.gpus and profile.node.gpu_model and profile.node.cpus and profile.node.arch
    assert profile.default_partition in profile.partitions
    assert profile.account.required
    assert profile.hardware().count("x") >= 1


@pytest.mark.parametrize("name", SHIPPED)
def test_every_site_composes_with_hydra(name: str) -> None:
    """configs/site is a Hydra config group: `+site=<name>` composes, resolves, and is the same profile."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(shipped_config_dir()), version_base=None):
        cfg = compose(overrides=[f"+site={name}"])
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    via_hydra = parse_profile(yaml.safe_dump(data["site"]), name=name, source="hydra")
    assert via_hydra == parse_profile((shipped_config_dir() / "site" / f"{name}.yaml").read_text(), name=name, source="hydra")


# -- a typical job on each real site ----------------------------------------------------------
@pytest.mark.parametrize("site", REAL)
def test_typical_two_node_job_plans_cleanly(site: str) -> None:
    account, gpus, cores, gpu_line = TYPICAL[site]
    p = plan(site, nodes=2, gpus_per_node=gpus, tasks_per_node=gpus, cpus_per_task=cores, account=account, time="2h")
    profile = aifsdk.load_site(site)
    assert f"#SBATCH --partition={profile.default_partition}\n" in p.script
    assert f"#SBATCH --account={account}\n" in p.script
    assert gpu_line + "\n" in p.script and "#SBATCH --nodes=2\n" in p.script
    assert ("#SBATCH --qos=" in p.script) == profile.qos_required
    assert p.cost.unit == profile.billing.unit and p.cost.amount > 0
    for key, value in profile.env.items():
        assert f"export {key}=" in p.script and value.split(",")[0] in p.script


def test_lumi_partial_node_on_exclusive_partition_names_both_fixes() -> None:
    (problem,) = problems("lumi-g", nodes=2, gpus_per_node=4, account="project_465001926", time="2h")
    assert problem.param == "gpus_per_node" and problem.value == 4
    assert "node-exclusive" in problem.allowed and "standard-g" in problem.allowed
    assert "gpus_per_node=8" in problem.fix and "partition='small-g'" in problem.fix
    p = plan("lumi-g", nodes=2, gpus_per_node=4, partition="small-g", account="project_465001926", time="2h")
    assert p.resources.gpus_per_node == 4 and "#SBATCH --partition=small-g" in p.script


def test_jupiter_partial_node_has_no_shared_partition_to_move_to() -> None:
    (problem,) = problems("jupiter-booster", gpus_per_node=2, account="e-dev-2026d09-128")
    assert "gpus_per_node=4" in problem.fix and "no shared partition" in problem.fix


@pytest.mark.parametrize(("site", "account"), [
    ("lumi-g", "465001926"),
    ("leonardo-booster", "EHPC-DEV-2025D02-101"),  # the proposal id, not the account
    ("karolina-gpu", "EU_25_92"),
    ("deucalion", "F20240001"),  # a CPU budget: GPU budgets end in g
    ("hortense", "ugent-2024-301"),
    ("meluxina-gpu", "P200301"),
])
def test_account_in_the_wrong_format(site: str, account: str) -> None:
    (problem,) = problems(site, account=account)
    example = aifsdk.load_site(site).account.example
    assert problem.param == "account" and problem.value == account
    assert f"e.g. {example!r}" in problem.allowed


def test_missing_account_names_the_command_that_lists_them() -> None:
    (problem,) = problems("leonardo-booster")
    assert problem.param == "account" and "saldo -b" in problem.fix


@pytest.mark.parametrize(("site", "kw", "limit", "hint"), [
    ("lumi-g", {"time": "3d"}, "2-00:00:00 on partition standard-g", "small-g"),
    ("jupiter-booster", {"time": "13h"}, "12:00:00 on partition booster", "12:00:00"),
    ("deucalion", {"time": "5h", "partition": "dev-a100-40"}, "04:00:00 on partition dev-a100-40", "normal-a100-40"),
    ("hortense", {"time": "4d"}, "3-00:00:00", "checkpointed"),
])
def test_time_above_the_maximum(site: str, kw: dict, limit: str, hint: str) -> None:
    account = TYPICAL[site][0]
    (problem,) = problems(site, account=account, **kw)
    assert problem.param == "time" and limit in problem.allowed and hint in problem.fix


def test_leonardo_debug_qos_limits() -> None:
    acc = "EUHPC_D35_189"
    found = problems("leonardo-booster", qos="boost_qos_dbg", nodes=3, gpus_per_node=4, time="1h", account=acc)
    assert sorted(p.param for p in found) == ["nodes", "time"]
    text = "\n".join(map(str, found))
    assert "at most 2 nodes with QoS boost_qos_dbg" in text and "at most 00:30:00 with QoS boost_qos_dbg" in text
    ok = plan("leonardo-booster", qos="boost_qos_dbg", nodes=2, gpus_per_node=4, account=acc)
    assert ok.resources.time == "00:30:00" and "QoS boost_qos_dbg" in ok.origins["time"]
    assert "#SBATCH --qos=boost_qos_dbg" in ok.script


def test_leonardo_size_classes_by_qos() -> None:
    acc = "EUHPC_D35_189"
    (big,) = problems("leonardo-booster", nodes=100, gpus_per_node=4, account=acc)
    assert "QoS normal" in big.allowed and "boost_qos_bprod" in big.fix
    (small,) = problems("leonardo-booster", nodes=10, qos="boost_qos_bprod", account=acc)
    assert "65-256" in small.allowed
    assert plan("leonardo-booster", nodes=100, qos="boost_qos_bprod", account=acc).resources.nodes == 100
    assert plan("leonardo-booster", nodes=3, gpus_per_node=4, qos="boost_qos_lprod", account=acc, time="4d").resources.nodes == 3


def test_qos_gpu_limit(clean_env: Path) -> None:
    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "q.yaml").write_text("executor: slurm\nnode: {gpus: 4}\npartitions: {p: {default: true}}\n"
                                 "qos: {small: {default: true, max_gpus: 6}}\nsources: [t]\n")
    (problem,) = problems("q", nodes=2, gpus_per_node=4)
    assert problem.param == "gpus_per_node" and "at most 6 GPUs in all with QoS small (asked 2 x 4)" in problem.allowed
    assert plan("q", nodes=3, gpus_per_node=2).resources.qos is None  # checked, not written: the site does not require one


def test_mn5_qos_is_mandatory_and_matches_the_account() -> None:
    p = plan("mn5-acc", nodes=2, gpus_per_node=4, account="ehpc123")
    assert p.resources.qos == "acc_ehpc" and "default QoS" in p.origins["qos"]
    (missing,) = problems("mn5-acc", account="bsc123")
    assert missing.param == "qos" and "bsc_queues" in missing.fix
    (wrong,) = problems("mn5-acc", account="bsc123", qos="acc_ehpc")
    assert wrong.param == "qos" and "ehpc" in wrong.allowed
    (unknown,) = problems("mn5-acc", account="ehpc123", qos="acc_nope")
    assert unknown.param == "qos" and "acc_debug" in unknown.allowed
    (debug,) = problems("mn5-acc", account="ehpc123", qos="acc_debug", nodes=9, gpus_per_node=4)
    assert debug.param == "nodes" and "acc_ehpc" in debug.fix


@pytest.mark.parametrize(("site", "kw", "allowed"), [
    ("mn5-acc", {"gpus_per_node": 1, "cpus_per_task": 40, "account": "ehpc123"}, "at most 20 CPU cores per GPU"),
    ("sofia", {"gpus_per_node": 1, "cpus_per_task": 32, "account": "2026_001"}, "exactly 24 CPU cores per GPU"),
    ("deucalion", {"gpus_per_node": 2, "tasks_per_node": 2, "cpus_per_task": 40, "account": "F20240001g"}, "at most 32 CPU cores per GPU"),
    ("lucia", {"gpus_per_node": 2, "tasks_per_node": 1, "cpus_per_task": 20, "account": "x"}, "at most 8 CPU cores per GPU"),
])
def test_cores_per_gpu_policy(site: str, kw: dict, allowed: str) -> None:
    (problem,) = problems(site, **kw)
    assert problem.param == "cpus_per_task" and allowed in problem.allowed
    top = int(allowed.split()[-5]) * kw["gpus_per_node"] // kw.get("tasks_per_node", 1)
    assert f"cpus_per_task<={top}" in problem.fix
    assert plan(site, **{**kw, "cpus_per_task": top}).resources.cpus_per_task == top


def test_memory_policies() -> None:
    (sofia,) = problems("sofia", gpus_per_node=2, mem_gb=100, account="2026_001")
    assert sofia.param == "mem_gb" and "memory follows the GPUs" in sofia.allowed
    (lucia,) = problems("lucia", gpus_per_node=1, mem_gb=100, account="x")
    assert "60 GB per GPU" in lucia.allowed


@pytest.mark.parametrize(("site", "kw", "unit", "amount", "gpu_hours"), [
    ("lumi-g", {"nodes": 2, "gpus_per_node": 8, "time": "2h"}, "gpu-hours", 16.0, 16.0),  # 4 node-h x 4
    ("lumi-g", {"nodes": 2, "gpus_per_node": 8, "time": "4h"}, "gpu-hours", 32.0, 32.0),  # the example
    ("lumi-g", {"nodes": 1, "gpus_per_node": 2, "partition": "small-g", "time": "4h"}, "gpu-hours", 4.0, 4.0),  # 1/4 node
    ("lumi-g", {"nodes": 1, "gpus_per_node": 2, "tasks_per_node": 1, "cpus_per_task": 32, "partition": "small-g", "time": "4h"},
     "gpu-hours", 8.0, 4.0),  # the core share (32/64) is the largest
    ("leonardo-booster", {"nodes": 2, "gpus_per_node": 4, "time": "2h"}, "core-hours", 128.0, 16.0),
    ("jupiter-booster", {"nodes": 2, "gpus_per_node": 4, "time": "4h"}, "node-hours", 8.0, 32.0),
    ("karolina-gpu", {"nodes": 1, "gpus_per_node": 2, "time": "4h"}, "node-hours", 1.0, 8.0),  # GPUs x h / 8
    ("sofia", {"nodes": 1, "gpus_per_node": 2, "time": "1h"}, "gpu-hours", 2.0, 2.0),
    ("hortense", {"nodes": 1, "gpus_per_node": 4, "time": "1h"}, "gpu-hours", 4.0, 4.0),
])
def test_cost_in_the_site_unit(site: str, kw: dict, unit: str, amount: float, gpu_hours: float) -> None:
    p = plan(site, account=TYPICAL[site][0], **kw)
    assert (p.cost.unit, p.cost.amount, p.cost.gpu_hours) == (unit, amount, gpu_hours)
    assert f"= {amount:g} {unit}" in p.cost.detail or p.cost.detail.endswith(f"{amount:g} node-h")
    assert p.cost.detail in p.summary()


def test_lumi_cost_reads_like_the_docs() -> None:
    p = plan("lumi-g", nodes=2, gpus_per_node=8, account="project_465001926", time="4h")
    assert p.cost.detail == "2 nodes x 4h on standard-g (node-exclusive) = 8 node-h x 4 gpu-hours per node-h = 32 gpu-hours"
    assert p.cost.node_hours == 8.0


@pytest.mark.parametrize("site", ANNOUNCED)
def test_announced_sites_refuse_with_a_clear_message(site: str) -> None:
    (problem,) = problems(site, nodes=2, gpus_per_node=4, account="x")
    profile = aifsdk.load_site(site)
    assert problem.param == "site" and "announced" in problem.allowed
    assert profile.notice in problem.fix and profile.alternatives[0] in problem.fix
    with pytest.raises(aifsdk.RequestError, match="Nothing can be submitted here yet"):
        aifsdk.submit(["true"], site=site)


def test_user_profile_overrides_the_shipped_one(clean_env: Path) -> None:
    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "lumi-g.yaml").write_text(
        "title: My LUMI\nexecutor: slurm\ngpu_request: gres\nnode: {gpus: 8}\n"
        "partitions: {mine: {default: true, max_nodes: 2, max_time: 60}}\nsources: [me]\n"
    )
    assert aifsdk.load_site("lumi-g").title == "My LUMI"
    p = plan("lumi-g", gpus_per_node=8)
    assert "#SBATCH --partition=mine" in p.script and "#SBATCH --gres=gpu:8" in p.script
    (problem,) = problems("lumi-g", nodes=3)
    assert "partition mine" in problem.allowed


def test_a_site_never_mixes_with_this_machines_cluster() -> None:
    """The local test cluster's partition `debug` is not a LUMI partition, discovered or not."""
    (problem,) = problems("lumi-g", partition="debug", account="project_465001926")
    assert problem.param == "partition" and "standard-g" in problem.allowed
    assert "debug" not in problem.allowed.replace("dev-g", "")


def test_scratch_job_root_takes_the_account() -> None:
    profile = aifsdk.load_site("lumi-g")
    assert profile.job_root_for("project_465001926").startswith("/scratch/project_465001926/")
    assert profile.job_root_for(None) == profile.job_root
    assert aifsdk.load_site("jupiter-booster").job_root_for("budget") == "~/.aifsdk/jobs"


# -- a table of bad requests across sites -----------------------------------------------------
BAD = [
    ("lumi-g", {"gpus_per_node": 16}, "gpus_per_node", "at most 8 per node"),
    ("lumi-g", {"gpus_per_node": 4}, "gpus_per_node", "node-exclusive"),
    ("lumi-g", {"nodes": 1025, "gpus_per_node": 8}, "nodes", "at most 1024"),
    ("lumi-g", {"nodes": 5, "partition": "small-g", "gpus_per_node": 2}, "nodes", "at most 4"),
    ("lumi-g", {"partition": "dev-g", "time": "4h"}, "time", "03:00:00"),
    ("lumi-g", {"partition": "standard"}, "partition", "standard-g"),
    ("lumi-g", {"tasks_per_node": 8, "cpus_per_task": 8, "gpus_per_node": 8}, "cpus_per_task", "63 CPUs per node"),
    ("lumi-g", {"mem_gb": 500, "gpus_per_node": 8}, "mem_gb", "480 GB"),
    ("jupiter-booster", {"gpus_per_node": 8}, "gpus_per_node", "at most 4 per node"),
    ("jupiter-booster", {"tasks_per_node": 4, "cpus_per_task": 80, "gpus_per_node": 4}, "cpus_per_task", "288 CPUs"),
    ("jupiter-booster", {"nodes": 6000, "gpus_per_node": 4}, "nodes", "5643"),
    ("leonardo-booster", {"qos": "boost_qos_dbg", "nodes": 3}, "nodes", "at most 2 nodes"),
    ("leonardo-booster", {"qos": "boost_qos_dbg", "time": 45}, "time", "00:30:00"),
    ("leonardo-booster", {"qos": "boost_qos_lprod", "time": "5d"}, "time", "4-00:00:00"),
    ("leonardo-booster", {"qos": "boost_qos_bprod", "nodes": 300}, "nodes", "65-256"),
    ("leonardo-booster", {"qos": "debug"}, "qos", "boost_qos_dbg"),
    ("leonardo-booster", {"time": "25h"}, "time", "QoS normal"),
    ("mn5-acc", {"qos": "acc_interactive", "nodes": 2}, "nodes", "at most 1 nodes"),
    ("mn5-acc", {"qos": "acc_debug", "time": "3h"}, "time", "02:00:00"),
    ("mn5-acc", {"time": "4d"}, "time", "QoS acc_ehpc"),
    ("mn5-acc", {"nodes": 101}, "nodes", "at most 100 nodes"),
    ("meluxina-gpu", {"time": "3d"}, "time", "2-00:00:00"),
    ("meluxina-gpu", {"qos": "fast"}, "qos", "default"),
    ("karolina-gpu", {"nodes": 20, "gpus_per_node": 8}, "nodes", "at most 16"),
    ("karolina-gpu", {"nodes": 4, "partition": "qgpu_big"}, "nodes", "at least 17"),
    ("karolina-gpu", {"gpus_per_node": 9}, "gpus_per_node", "at most 8"),
    ("vega-gpu", {"partition": "gpu_a100"}, "partition", "gpu"),
    ("deucalion", {"nodes": 5}, "nodes", "at most 4"),
    ("deucalion", {"nodes": 2, "partition": "dev-a100-80"}, "nodes", "at most 1"),
    ("hortense", {"mem_gb": 300, "gpus_per_node": 4}, "mem_gb", "238 GB"),
    ("hortense", {"nodes": 21, "partition": "gpu_rome_a100_80"}, "nodes", "20 (nodes of partition gpu_rome_a100_80)"),
    ("sofia", {"mem_gb": 64, "gpus_per_node": 1}, "mem_gb", "memory follows the GPUs"),
    ("sofia", {"nodes": 23}, "nodes", "22"),
    ("lucia", {"partition": "ia", "nodes": 3}, "nodes", "at most 2"),
    ("lucia", {"partition": "ia", "gpus_per_node": 8, "tasks_per_node": 8, "cpus_per_task": 9}, "cpus_per_task", "64 CPUs"),
]


@pytest.mark.parametrize(("site", "kw", "param", "fragment"), BAD, ids=[f"{s}-{i}" for i, (s, *_) in enumerate(BAD)])
def test_bad_request_table(site: str, kw: dict, param: str, fragment: str) -> None:
    found = problems(site, account=TYPICAL[site][0], **kw)
    assert [p.param for p in found] == [param], found
    assert fragment in found[0].allowed + " " + found[0].fix
    assert found[0].fix
