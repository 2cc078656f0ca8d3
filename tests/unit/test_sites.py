"""The shipped site profiles (configs/site/): schema, Hydra, and requests checked against each site.

Everything here goes through ``plan``: no site profile ever submits to the local test cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import aifsdk
from aifsdk._cost import UNIT_LABEL
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


def test_lumi_partial_node_on_exclusive_partition_is_a_warning_naming_both_cheaper_ways() -> None:
    """standard-g named with 4 GPUs per node: LUMI runs it on whole nodes (billed whole), so the
    plan goes through with a warning naming both cheaper ways (8 GPUs, or small-g)."""
    p = plan("lumi-g", nodes=2, gpus_per_node=4, partition="standard-g", account="project_465001926", time="2h")
    (warning,) = p.warnings
    assert warning.param == "gpus_per_node" and warning.value == 4
    assert "node-exclusive" in warning.waste and "standard-g" in warning.waste
    assert "gpus_per_node=8" in warning.cheaper and "partition='small-g'" in warning.cheaper
    assert "#SBATCH --partition=standard-g\n" in p.script and "#SBATCH --gpus-per-node=4\n" in p.script
    assert f"WARNING:   {warning}" in str(p)
    small = plan("lumi-g", nodes=2, gpus_per_node=4, partition="small-g", account="project_465001926", time="2h")
    assert small.resources.gpus_per_node == 4 and "#SBATCH --partition=small-g" in small.script and not small.warnings


def test_strict_turns_warnings_into_a_request_error() -> None:
    (problem,) = problems("lumi-g", nodes=2, gpus_per_node=4, partition="standard-g", account="project_465001926", time="2h", strict=True)
    assert problem.param == "gpus_per_node" and problem.value == 4
    assert "strict" in problem.allowed and "node-exclusive" in problem.allowed and "partition='small-g'" in problem.fix
    assert not plan("lumi-g", nodes=2, gpus_per_node=8, account="project_465001926", time="2h", strict=True).warnings
    (bad,) = problems("lumi-g", nodes=2, gpus_per_node=8, account="project_465001926", time="2h", strict="yes")
    assert bad.param == "strict" and bad.value == "yes"


def test_lumi_partial_node_moves_to_small_g_and_says_so() -> None:
    """No partition named: 4 GPUs per node go to small-g (never silently): the plan says which and why."""
    p = plan("lumi-g", nodes=2, gpus_per_node=4, account="project_465001926", time="2h")
    assert p.resources.partition == "small-g" and p.resources.gpus_per_node == 4
    assert "#SBATCH --partition=small-g\n" in p.script and "#SBATCH --gpus-per-node=4\n" in p.script
    origin = p.origins["partition"]
    assert "standard-g does not fit: node-exclusive with 8 GPUs per node" in origin and "gpus_per_node=8" in origin
    assert any(n.startswith("partition small-g") and "standard-g" in n for n in p.notes)
    assert "small-g" in p.summary() and "gpus_per_node=8" in p.summary()
    full = plan("lumi-g", nodes=2, gpus_per_node=8, account="project_465001926", time="2h")
    assert full.resources.partition == "standard-g" and full.origins["partition"] == "site default partition"


@pytest.mark.parametrize(("site", "kw", "partition", "qos", "origin"), [
    ("lumi-g", {"nodes": 1, "gpus_per_node": 8, "time": "2-12:00:00"}, "small-g", None, "standard-g does not fit: at most 2-00:00:00"),
    ("lumi-g", {"nodes": 8, "gpus_per_node": 8, "time": "1h"}, "standard-g", None, "site default partition"),
    ("karolina-gpu", {"nodes": 20, "gpus_per_node": 8}, "qgpu_big", None, "qgpu does not fit: at most 16 nodes"),
    ("lucia", {"nodes": 1, "gpus_per_node": 8}, "ia", None, "gpu does not fit: at most 4 GPUs per node"),
    ("leonardo-booster", {"nodes": 100, "gpus_per_node": 4}, "boost_usr_prod", "boost_qos_bprod", "normal does not fit: at most 64 nodes"),
    ("leonardo-booster", {"nodes": 2, "gpus_per_node": 4, "time": "3d"}, "boost_usr_prod", "boost_qos_lprod", "normal does not fit: at most 1-00:00:00"),
])
def test_smallest_class_that_fits_is_chosen(site: str, kw: dict, partition: str, qos: str | None, origin: str) -> None:
    p = plan(site, account=TYPICAL[site][0], **kw)
    assert p.resources.partition == partition
    assert p.resources.qos == qos
    where = p.origins["qos"] if qos else p.origins["partition"]
    assert origin in where
    if qos:  # a QoS other than the site's default is always written: Slurm would apply its default
        assert f"#SBATCH --qos={qos}\n" in p.script and any(n.startswith(f"QoS {qos} chosen") for n in p.notes)


@pytest.mark.parametrize(("site", "ask", "partition", "qos"), [
    ("lumi-g", {"partition": "debug"}, "dev-g", None),
    ("leonardo-booster", {"qos": "debug"}, "boost_usr_prod", "boost_qos_dbg"),
    ("mn5-acc", {"qos": "debug"}, "acc", "acc_debug"),
    ("deucalion", {"partition": "debug"}, "dev-a100-40", None),
])
def test_debug_class_only_when_asked(site: str, ask: dict, partition: str, qos: str | None) -> None:
    """A short small job gets the debug class when it asks for it (partition/qos="debug"), never otherwise."""
    gpus = TYPICAL[site][1]
    plain = plan(site, account=TYPICAL[site][0], gpus_per_node=gpus, time=20)
    assert plain.resources.partition != partition or plain.resources.qos != qos
    p = plan(site, account=TYPICAL[site][0], gpus_per_node=gpus, time=20, **ask)
    assert (p.resources.partition, p.resources.qos) == (partition, qos)
    assert "the request asked for debug" in (p.origins["qos"] if qos else p.origins["partition"])
    assert f"#SBATCH --partition={partition}\n" in p.script


def test_debug_on_a_site_without_a_debug_class() -> None:
    (problem,) = problems("sofia", partition="debug", account="2026_001")
    assert problem.param == "partition" and "declares none" in problem.allowed and "zen4_h200" in problem.fix


def test_jupiter_partial_node_has_no_shared_partition_to_move_to() -> None:
    (warning,) = plan("jupiter-booster", gpus_per_node=2, account="e-dev-2026d09-128").warnings
    assert "gpus_per_node=4" in warning.cheaper and "no shared partition" in warning.cheaper


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
    ("lumi-g", {"time": "3d", "partition": "standard-g"}, "2-00:00:00 on partition standard-g", "small-g"),
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
    (big,) = problems("leonardo-booster", nodes=100, gpus_per_node=4, account=acc, qos="normal")
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


# Accounts seen in public job scripts of each site (named in the profile's sources): never refused.
@pytest.mark.parametrize(("site", "account", "qos"), [
    ("mn5-acc", "etur02", "acc_ehpc"), ("mn5-acc", "epor48", "acc_ehpc"), ("mn5-acc", "ehpc628", "acc_ehpc"),
    ("karolina-gpu", "eu-25-92", None), ("karolina-gpu", "EU-25-92", None),
    ("leonardo-booster", "IscrB_MLLM-RAG", None), ("leonardo-booster", "AIFAC_F02_378", None),
])
def test_real_accounts_are_accepted(site: str, account: str, qos: str | None) -> None:
    p = plan(site, nodes=1, gpus_per_node=4, account=account)
    assert p.resources.account == account and p.resources.qos == qos


def test_meluxina_qos_limits_as_luxprovide_gives_them() -> None:
    p = plan("meluxina-gpu", nodes=2, gpus_per_node=4, tasks_per_node=4, cpus_per_task=32, account="p200301")
    assert p.resources.qos == "default", "128 Slurm CPUs per node: 4 x 32 fits"
    (big,) = problems("meluxina-gpu", nodes=51, gpus_per_node=4, account="p200301")
    assert big.param == "nodes" and "QoS default" in big.allowed
    long = plan("meluxina-gpu", qos="long", time="72h", gpus_per_node=4, account="p200301")
    assert long.resources.qos == "long" and "#SBATCH --time=3-00:00:00" in long.script, "QoS long allows 144 h"
    chosen = plan("meluxina-gpu", time="72h", gpus_per_node=4, account="p200301")
    assert chosen.resources.qos == "long" and "#SBATCH --qos=long\n" in chosen.script, "only long fits 72 h"
    (longer,) = problems("meluxina-gpu", qos="long", time="145h", gpus_per_node=4, account="p200301")
    assert longer.param == "time" and "QoS long" in longer.allowed
    (test,) = problems("meluxina-gpu", qos="test", time="1h", gpus_per_node=4, account="p200301")
    assert test.param == "time" and "00:30:00" in test.allowed
    (large,) = problems("meluxina-gpu", qos="large", gpus_per_node=4, account="p200301")
    assert large.param == "qos", "large is by special arrangement: not a project's QoS unless declared"


def test_hortense_debug_partition_is_one_l4_eight_cores_and_free() -> None:
    p = plan("hortense", partition="debug_milan_rhel9", gpus_per_node=1, cpus_per_task=8, account="2024_301", time="1h")
    assert p.cost.amount == 0 and "free" in p.cost.detail
    (two,) = problems("hortense", partition="debug_milan_rhel9", gpus_per_node=2, account="2024_301")
    assert two.param == "gpus_per_node" and "at most 1" in two.allowed
    (cores,) = problems("hortense", partition="debug_milan_rhel9", gpus_per_node=1, cpus_per_task=9, account="2024_301")
    assert cores.param == "cpus_per_task" and "8 CPUs" in cores.allowed


@pytest.mark.parametrize(("site", "kw", "allowed"), [
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


def test_mn5_refuses_fewer_than_20_cores_per_gpu() -> None:
    """BSC refuses a GPU job with fewer than 20 cores per GPU at submission (its own filter)."""
    (few,) = problems("mn5-acc", gpus_per_node=4, tasks_per_node=4, cpus_per_task=8, account="ehpc123")
    assert few.param == "cpus_per_task" and "at least 20 CPU cores per GPU" in few.allowed and "cpus_per_task>=20" in few.fix
    (one,) = problems("mn5-acc", gpus_per_node=2, tasks_per_node=1, cpus_per_task=39, account="ehpc123")
    assert "cpus_per_task>=40" in one.fix
    assert plan("mn5-acc", gpus_per_node=2, tasks_per_node=1, cpus_per_task=40, account="ehpc123").resources.cpus_per_task == 40


def test_a_qos_fix_names_only_qos_the_account_can_use() -> None:
    """acc_ehpc is for EuroHPC accounts: a BSC account over acc_debug's 8 nodes is pointed to the
    QoS it may hold (acc_bsc*, 25 nodes), never to acc_ehpc."""
    (bsc,) = problems("mn5-acc", account="bsc123", qos="acc_debug", nodes=9)
    assert bsc.param == "nodes" and "qos='acc_bsccase'" in bsc.fix and "acc_ehpc" not in bsc.fix and "no QoS" not in bsc.fix
    (ehpc,) = problems("mn5-acc", account="ehpc123", qos="acc_debug", nodes=9)
    assert "use qos='acc_ehpc' for 9 nodes" in ehpc.fix and "acc_bsc" not in ehpc.fix


def test_mn5_accepts_more_than_20_cores_per_gpu() -> None:
    """BSC documents a minimum of 20 cores per GPU, no maximum: more is accepted, without a warning
    (how BSC charges a partial node is not documented)."""
    p = plan("mn5-acc", gpus_per_node=1, tasks_per_node=1, cpus_per_task=40, account="ehpc123")
    assert p.resources.cpus_per_task == 40 and p.resources.gpus_per_node == 1 and not p.warnings
    assert "#SBATCH --cpus-per-task=40" in p.script.splitlines()


def test_memory_policies() -> None:
    (sofia,) = problems("sofia", gpus_per_node=2, mem_gb=100, account="2026_001")
    assert sofia.param == "mem_gb" and "memory follows the GPUs" in sofia.allowed
    (lucia,) = problems("lucia", gpus_per_node=1, mem_gb=100, account="x")
    assert "60 GB per GPU" in lucia.allowed


# Hand-computed from each site's billing rule: billed node-h = nodes x h x the billed share of a
# node; GPU-h = node-h x the node's GPUs (LUMI: / 2 GCDs per billed MI250X); core-h = node-h x cores.
COSTS = [
    # site, request, unit, amount, node-h, GPU-h, core-h, detail
    ("lumi-g", {"nodes": 2, "gpus_per_node": 8, "time": "4h"}, "gpu-hours", 32, 8, 32, 512,
     "2 nodes x 4 h on LUMI-G standard-g (node-exclusive) = 8 node-h x 4 GPU-h per node-h = 32 billed GPU-h"),
    ("lumi-g", {"nodes": 1, "gpus_per_node": 2, "partition": "small-g", "time": "4h"}, "gpu-hours", 4, 1, 4, 64,
     "1 node x 4 h on LUMI-G small-g x 2/8 of a node (its GPUs) = 1 node-h x 4 GPU-h per node-h = 4 billed GPU-h"),
    ("lumi-g", {"nodes": 1, "gpus_per_node": 2, "tasks_per_node": 1, "cpus_per_task": 32, "partition": "small-g", "time": "4h"},
     "gpu-hours", 8, 2, 8, 128,
     "1 node x 4 h on LUMI-G small-g x 32/64 of a node (its cores) = 2 node-h x 4 GPU-h per node-h = 8 billed GPU-h"),
    # LUMI bills small-g cores and memory in whole slices of 8 cores / 64 GB: 1 GCD with 9 cores is 2 slices = 1.0 GPU-h
    # an hour (LUMI's billing page: max(ceil(cores/8), ceil(mem/64 GB), GCDs) x 0.5), not 9/64 x 4 = 0.5625.
    ("lumi-g", {"nodes": 1, "gpus_per_node": 1, "tasks_per_node": 1, "cpus_per_task": 9, "partition": "small-g", "time": "1h"},
     "gpu-hours", 1, 0.25, 1, 16,
     "1 node x 1 h on LUMI-G small-g x 16/64 of a node (its cores: 9 in 8-core slices) = 0.25 node-h x 4 GPU-h per node-h = 1 billed GPU-h"),
    # LUMI's own example: 1 GCD with 128 GB for 24 h = ceil(128/64) x 24 x 0.5 = 24 GPU-h.
    ("lumi-g", {"nodes": 1, "gpus_per_node": 1, "mem_gb": 128, "partition": "small-g", "time": "24h"},
     "gpu-hours", 24, 6, 24, 384,
     "1 node x 24 h on LUMI-G small-g x 128/512 of a node (its memory) = 6 node-h x 4 GPU-h per node-h = 24 billed GPU-h"),
    ("lumi-g", {"nodes": 1, "gpus_per_node": 1, "mem_gb": 65, "tasks_per_node": 1, "cpus_per_task": 1, "partition": "small-g", "time": "1h"},
     "gpu-hours", 1, 0.25, 1, 16,
     "1 node x 1 h on LUMI-G small-g x 128/512 of a node (its memory: 65 GB in 64 GB slices) = 0.25 node-h x 4 GPU-h per node-h = 1 billed GPU-h"),
    ("leonardo-booster", {"nodes": 2, "gpus_per_node": 4, "time": "2h"}, "core-hours", 128, 4, 16, 128,
     "2 nodes x 2 h on Leonardo Booster boost_usr_prod = 4 node-h x 32 core-h per node-h = 128 billed core-h"),
    ("leonardo-booster", {"nodes": 1, "gpus_per_node": 1, "cpus_per_task": 8, "time": "10h"}, "core-hours", 80, 2.5, 10, 80,
     "1 node x 10 h on Leonardo Booster boost_usr_prod x 1/4 of a node (its GPUs) = 2.5 node-h x 32 core-h per node-h = 80 billed core-h"),
    ("karolina-gpu", {"nodes": 1, "gpus_per_node": 2, "time": "4h"}, "node-hours", 1, 1, 8, 128,
     "1 node x 4 h on Karolina GPU qgpu x 2/8 of a node (its GPUs) = 1 node-h = 1 billed node-h"),
    ("karolina-gpu", {"nodes": 2, "gpus_per_node": 8, "time": "10h"}, "node-hours", 20, 20, 160, 2560,
     "2 nodes x 10 h on Karolina GPU qgpu = 20 node-h = 20 billed node-h"),
    ("jupiter-booster", {"nodes": 2, "gpus_per_node": 4, "time": "4h"}, "node-hours", 8, 8, 32, 2304,
     "2 nodes x 4 h on JUPITER Booster booster (node-exclusive) = 8 node-h = 8 billed node-h"),
    ("sofia", {"nodes": 1, "gpus_per_node": 2, "time": "1h"}, "gpu-hours", 2, 0.25, 2, 48,
     "1 node x 1 h on sofia zen4_h200 x 2/8 of a node (its GPUs) = 0.25 node-h x 8 GPU-h per node-h = 2 billed GPU-h"),
    ("hortense", {"nodes": 1, "gpus_per_node": 4, "time": "1h"}, "gpu-hours", 4, 1, 4, 48,
     "1 node x 1 h on Hortense gpu_rome_a100_40 = 1 node-h x 4 GPU-h per node-h = 4 billed GPU-h"),
    ("hortense", {"nodes": 1, "gpus_per_node": 1, "partition": "debug_milan_rhel9", "time": "1h"}, "gpu-hours", 0, 0, 0, 0,
     "1 node x 1 h on Hortense debug_milan_rhel9 (free: no allocation is consumed)"),
]


@pytest.mark.parametrize(("site", "kw", "unit", "amount", "node_h", "gpu_h", "core_h", "detail"), COSTS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(COSTS)])
def test_cost_in_the_site_unit(site: str, kw: dict, unit: str, amount: float, node_h: float, gpu_h: float, core_h: float,
                               detail: str) -> None:
    p = plan(site, account=TYPICAL[site][0], **kw)
    assert (p.cost.unit, p.cost.amount, p.cost.node_hours, p.cost.gpu_hours, p.cost.core_hours) == (unit, amount, node_h, gpu_h, core_h)
    assert p.cost.detail == detail
    assert detail in p.summary()


@pytest.mark.parametrize("site", REAL)
def test_every_cost_line_agrees_with_the_billing_rule(site: str) -> None:
    """The Leonardo bug: 128 core-h billed but 4 core-h shown. Every figure comes from one bill."""
    account, gpus, cores, _ = TYPICAL[site]
    p = plan(site, nodes=2, gpus_per_node=gpus, tasks_per_node=gpus, cpus_per_task=cores, account=account, time="3h")
    profile, c = aifsdk.load_site(site), p.cost
    node = profile.node
    assert c.gpu_hours == pytest.approx(c.node_hours * node.gpus / profile.billing.gpus_per_billed_gpu)
    assert c.core_hours == pytest.approx(c.node_hours * (profile.partitions[p.resources.partition].cpus_per_node or node.cpus))
    figure = {"gpu-hours": c.gpu_hours, "node-hours": c.node_hours, "core-hours": c.core_hours}[c.unit]
    per_node = profile.billing.per_node_hour
    assert c.amount == pytest.approx(c.node_hours * per_node if per_node is not None else figure)
    assert c.amount == pytest.approx(figure), "the profile's per_node_hour agrees with the node's GPUs or cores"
    assert c.detail.endswith(f"= {c.amount:g} billed {UNIT_LABEL[c.unit]}")


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
    """The local test cluster's partition `debug` is not a LUMI partition, discovered or not:
    on LUMI, partition="debug" means LUMI's own debug class."""
    (problem,) = problems("lumi-g", partition="gpu", account="project_465001926")
    assert problem.param == "partition" and problem.allowed == "one of dev-g, small-g, standard-g"
    assert plan("lumi-g", partition="debug", gpus_per_node=8, account="project_465001926").resources.partition == "dev-g"


def test_scratch_job_root_takes_the_account() -> None:
    profile = aifsdk.load_site("lumi-g")
    assert profile.job_root_for("project_465001926").startswith("/scratch/project_465001926/")
    assert profile.job_root_for(None) == profile.job_root
    assert aifsdk.load_site("jupiter-booster").job_root_for("budget") == "~/.aifsdk/jobs"


# -- a table of bad requests across sites -----------------------------------------------------
# (site, request, the parameter named, a fragment of what is allowed, a fragment of the fix)
BAD = [
    ("lumi-g", {"gpus_per_node": 16}, "gpus_per_node", "at most 8 per node", "gpus_per_node<=8"),
    ("lumi-g", {"nodes": 1025, "gpus_per_node": 8}, "nodes", "at most 1024", "nodes<=1024"),
    ("lumi-g", {"nodes": 5, "partition": "small-g", "gpus_per_node": 2}, "nodes", "at most 4", "use nodes<=4, or partition='standard-g'"),
    ("lumi-g", {"partition": "dev-g", "time": "4h"}, "time", "03:00:00", "or use partition='standard-g' or partition='small-g'"),
    ("lumi-g", {"partition": "standard-g", "time": "3d"}, "time", "2-00:00:00 on partition standard-g", "or use partition='small-g'"),
    ("lumi-g", {"partition": "standard"}, "partition", "standard-g", "sinfo -s"),
    ("lumi-g", {"tasks_per_node": 8, "cpus_per_task": 8, "gpus_per_node": 8}, "cpus_per_task", "56 CPUs per node", "cpus_per_task<=7"),
    ("lumi-g", {"tasks_per_node": 1, "cpus_per_task": 57, "gpus_per_node": 8}, "cpus_per_task", "56 CPUs per node", "cpus_per_task<=56"),
    ("lumi-g", {"mem_gb": 500, "gpus_per_node": 8}, "mem_gb", "480 GB", "mem_gb<=480"),
    ("lumi-g", {"account": "465001926"}, "account", "project_[0-9]{9}", "lumi-workspaces"),
    ("jupiter-booster", {"gpus_per_node": 8}, "gpus_per_node", "at most 4 per node", "gpus_per_node<=4"),
    ("jupiter-booster", {"tasks_per_node": 4, "cpus_per_task": 80, "gpus_per_node": 4}, "cpus_per_task", "288 CPUs", "cpus_per_task<=72"),
    ("jupiter-booster", {"nodes": 6000, "gpus_per_node": 4}, "nodes", "5884", "nodes<=5884"),
    ("jupiter-booster", {"time": "13h"}, "time", "12:00:00 on partition booster", "lower time to 12:00:00"),
    ("leonardo-booster", {"qos": "boost_qos_dbg", "nodes": 3}, "nodes", "at most 2 nodes", "use qos='normal' or qos='boost_qos_lprod' for 3 nodes"),
    ("leonardo-booster", {"qos": "boost_qos_dbg", "time": 45}, "time", "00:30:00", "boost_qos_lprod"),
    ("leonardo-booster", {"qos": "debug", "time": 45}, "time", "00:30:00 with QoS boost_qos_dbg", "lower time to 00:30:00"),
    ("leonardo-booster", {"qos": "boost_qos_lprod", "time": "5d"}, "time", "4-00:00:00", "checkpointed jobs"),
    ("leonardo-booster", {"qos": "boost_qos_bprod", "nodes": 300}, "nodes", "65-256", "nodes<=256 (no QoS in the profile of site leonardo-booster allows 300 nodes)"),
    ("leonardo-booster", {"nodes": 300}, "nodes", "at most 64 nodes with QoS normal", "or qos='boost_qos_bprod' with nodes<=256"),
    ("leonardo-booster", {"account": "EHPC-DEV-2025D02-101"}, "account", "EUHPC_D35_189", "saldo -b"),
    ("mn5-acc", {"qos": "acc_interactive", "nodes": 2}, "nodes", "at most 1 nodes", "use qos='acc_ehpc' with partition='acc' for 2 nodes"),
    ("mn5-acc", {"qos": "acc_debug", "time": "3h"}, "time", "02:00:00", "or use qos='acc_ehpc'"),
    ("mn5-acc", {"time": "4d"}, "time", "QoS acc_ehpc", "3-00:00:00"),
    ("mn5-acc", {"nodes": 101}, "nodes", "at most 100 nodes", "nodes<=100 (no QoS in the profile of site mn5-acc allows 101 nodes)"),
    ("meluxina-gpu", {"time": "7d"}, "time", "2-00:00:00", "lower time to 2-00:00:00, or use qos='long' with time<=6-00:00:00"),
    ("meluxina-gpu", {"time": "72h", "qos": "default"}, "time", "2-00:00:00 with QoS default", "or use qos='long';"),
    ("meluxina-gpu", {"time": "72h", "nodes": 20}, "time", "2-00:00:00 with QoS default", "or use qos='long' with nodes<=10"),
    ("meluxina-gpu", {"nodes": 20, "qos": "long"}, "nodes", "at most 10 nodes with QoS long", "use qos='default' for 20 nodes"),
    ("meluxina-gpu", {"nodes": 60}, "nodes", "at most 50 nodes with QoS default", "no QoS in the profile of site meluxina-gpu allows 60 nodes"),
    ("meluxina-gpu", {"qos": "fast"}, "qos", "default", "QoS the site has"),
    ("karolina-gpu", {"nodes": 20, "gpus_per_node": 8, "partition": "qgpu"}, "nodes", "at most 16", "or partition='qgpu_big'"),
    ("karolina-gpu", {"nodes": 4, "partition": "qgpu_big"}, "nodes", "at least 17", "or partition='qgpu'"),
    ("karolina-gpu", {"gpus_per_node": 9}, "gpus_per_node", "at most 8", "gpus_per_node<=8"),
    ("karolina-gpu", {"account": "EU_25_92"}, "account", "EU-25-92", "it4ifree"),
    ("vega-gpu", {"partition": "gpu_a100"}, "partition", "one of gpu", "pick a partition"),
    ("deucalion", {"nodes": 5}, "nodes", "at most 4", "nodes<=4"),
    ("deucalion", {"nodes": 2, "partition": "dev-a100-80"}, "nodes", "at most 1", "or partition='normal-a100-40' or partition='normal-a100-80'"),
    ("deucalion", {"account": "F20240001"}, "account", "F20240001g", "project account"),
    ("hortense", {"mem_gb": 300, "gpus_per_node": 4}, "mem_gb", "238 GB", "mem_gb<=238"),
    ("hortense", {"nodes": 21, "partition": "gpu_rome_a100_80"}, "nodes", "20 (nodes of partition gpu_rome_a100_80)", "nodes<=20"),
    ("sofia", {"mem_gb": 64, "gpus_per_node": 1}, "mem_gb", "memory follows the GPUs", "leave mem_gb unset"),
    ("sofia", {"nodes": 23}, "nodes", "22", "nodes<=22"),
    ("sofia", {"gpus_per_node": 1, "cpus_per_task": 32}, "cpus_per_task", "exactly 24 CPU cores per GPU", "cpus_per_task<=24"),
    ("lucia", {"partition": "ia", "nodes": 3}, "nodes", "at most 2", "or partition='gpu'"),
    ("lucia", {"partition": "ia", "gpus_per_node": 8, "tasks_per_node": 8, "cpus_per_task": 9}, "cpus_per_task", "64 CPUs", "cpus_per_task<=8"),
    ("lucia", {"gpus_per_node": 1, "mem_gb": 100}, "mem_gb", "60 GB per GPU", "mem_gb<=60"),
]


@pytest.mark.parametrize(("site", "kw", "param", "allowed", "fix"), BAD, ids=[f"{s}-{i}" for i, (s, *_) in enumerate(BAD)])
def test_bad_request_table(site: str, kw: dict, param: str, allowed: str, fix: str) -> None:
    request = {"account": TYPICAL[site][0], **kw}
    with pytest.raises(aifsdk.RequestError) as info:
        plan(site, **request)
    found = info.value.problems
    assert [p.param for p in found] == [param], found
    problem = found[0]
    assert problem.value == request[param], "the problem names the value that was asked for"
    assert allowed in problem.allowed and fix in problem.fix, problem
    assert f"{param}={request[param]!r}" in str(info.value) or f"{param}={request[param]}" in str(info.value)
    assert "nothing was submitted" in str(info.value)


# Requests the site runs but that waste budget: a warning on the plan, an error with strict=True.
# (site, request, the parameter named, a fragment of the waste, a fragment of the cheaper way)
WASTE = [
    ("lumi-g", {"gpus_per_node": 4, "partition": "standard-g"}, "gpus_per_node", "node-exclusive", "partition='small-g'"),
    ("jupiter-booster", {"gpus_per_node": 2}, "gpus_per_node", "node-exclusive", "no shared partition"),
]


@pytest.mark.parametrize(("site", "kw", "param", "waste", "cheaper"), WASTE, ids=[f"{s}-{i}" for i, (s, *_) in enumerate(WASTE)])
def test_waste_table(site: str, kw: dict, param: str, waste: str, cheaper: str) -> None:
    request = {"account": TYPICAL[site][0], **kw}
    (warning,) = plan(site, **request).warnings
    assert warning.param == param and warning.value == request[param]
    assert waste in warning.waste and cheaper in warning.cheaper, warning
    (problem,) = problems(site, strict=True, **request)
    assert problem.param == param and cheaper in problem.fix


def test_the_bad_request_table_covers_every_real_site() -> None:
    assert len(BAD) >= 30 and {site for site, *_ in BAD} == set(REAL)


# -- aifsdk sites / sites show ----------------------------------------------------------------
@pytest.mark.parametrize("site", REAL)
def test_sites_show_prints_the_whole_profile(site: str, capsys: pytest.CaptureFixture[str]) -> None:
    from aifsdk.cli import EXIT_OK, run

    assert run(["sites", "show", site]) == EXIT_OK
    out = capsys.readouterr().out
    profile = aifsdk.load_site(site)
    assert out.startswith(f"{site}: {profile.title}\n") and profile.hardware() in out
    for name in profile.partitions:
        assert f"\n  {name}" in out
    for name in profile.qos:
        assert f"\n  {name}" in out
    flag = "--gres=gpu:N" if profile.gpu_request == "gres" else "--gpus-per-node=N"
    assert f"GPU flag:    {flag}" in out and f"billing:     {profile.billing.unit}" in out
    assert "account:     required" in out and (profile.account.pattern or "") in out
    assert all(f"{k}={v}" in out for k, v in profile.env.items())
    assert all(line in out for line in profile.software.modules + profile.setup)
    assert all(src.source in out for src in profile.sources if isinstance(src, Source))
    assert "launch:" in out and "job folders:" in out


def test_sites_lists_every_profile_with_its_hardware(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from aifsdk.cli import EXIT_OK, EXIT_USAGE, run

    assert run(["sites", "--json"]) == EXIT_OK
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(SHIPPED)
    assert rows["lumi-g"]["hardware"] == aifsdk.load_site("lumi-g").hardware() != ""
    assert run(["sites", "show", "lumi"]) == EXIT_USAGE
    assert "did you mean lumi-g" in capsys.readouterr().err
    assert run(["sites", "list", "x", "y"]) == EXIT_USAGE
    assert "aifsdk sites show NAME" in capsys.readouterr().err


def test_scratch_job_folder_takes_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote site's job folders go under its scratch template with the project substituted."""
    import getpass

    monkeypatch.delenv("AIFSDK_JOB_ROOT")
    p = plan("lumi-g", gpus_per_node=8, account="project_465001926")
    assert str(p.folder).startswith(f"/scratch/project_465001926/{getpass.getuser()}/aifsdk/jobs/lumi-g/")
    assert f"--output=/scratch/project_465001926/{getpass.getuser()}/aifsdk/jobs/lumi-g/" in p.script
    leo = plan("leonardo-booster", gpus_per_node=4, account="EUHPC_D35_189")
    assert str(leo.folder).startswith(f"/leonardo_work/EUHPC_D35_189/{getpass.getuser()}/aifsdk/jobs/")
    no_scratch = plan("karolina-gpu", gpus_per_node=8, account="EU-25-92")  # no scratch template: job_root
    assert str(no_scratch.folder).startswith(str(Path("~/.aifsdk/jobs").expanduser()))


# -- Hydra: site=... and resources.*=... in a user's app ----------------------------------------
def _compose(*overrides: str):  # type: ignore[no-untyped-def]
    from hydra import compose, initialize_config_dir

    from aifsdk.hydra import register

    register()
    conf = Path(__file__).resolve().parents[2] / "examples" / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose(config_name="hydra_app", overrides=list(overrides))


def test_hydra_site_and_resources_overrides_select_and_adjust_a_profile() -> None:
    from aifsdk.hydra import options

    cfg = _compose("site=leonardo-booster", "resources.nodes=2", "resources.gpus_per_node=4", "resources.account=EUHPC_D35_189",
                   "resources.time=3d")
    opts = options(cfg)
    assert opts == {"site": "leonardo-booster", "nodes": 2, "gpus_per_node": 4, "account": "EUHPC_D35_189", "time": "3d"}
    p = plan(**opts)
    assert p.resources.qos == "boost_qos_lprod", "3 days on Leonardo: the QoS that fits is chosen"
    assert options(_compose())["site"] == "local"


def test_every_profile_is_a_hydra_choice(clean_env: Path) -> None:
    from aifsdk.hydra import register

    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "mine.yaml").write_text("executor: slurm\nsources: [me]\n")
    (user / "broken.yaml").write_text("executor: pbs\n")
    stored = register()
    assert set(stored) == set(SHIPPED) | {"mine"}, "a profile that breaks the schema is left out"
    assert options_of("site=mine")["site"] == "mine"


def options_of(*overrides: str) -> dict:
    from aifsdk.hydra import options

    return options(_compose(*overrides))


@pytest.mark.parametrize(("override", "param", "fix"), [
    ("resources.gpus=4", "resources.gpus", "Resources field"),
    ("site.default_time=5", "site.default_time", "change a profile with a file"),
    ("site.partitions.standard-g.max_nodes=9", "site.partitions", "resources.partition"),
])
def test_hydra_overrides_that_aifsdk_refuses(override: str, param: str, fix: str) -> None:
    prefix = "+" if override.startswith("resources.gpus=") else ""
    with pytest.raises(aifsdk.RequestError) as info:
        options_of("site=lumi-g", prefix + override)
    (problem,) = info.value.problems
    assert problem.param == param and fix in problem.fix


def test_a_named_qos_picks_its_own_partition(clean_env: Path) -> None:
    """A QoS bound to another partition than the default: the partition follows the QoS."""
    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "q2.yaml").write_text("executor: slurm\nnode: {gpus: 4}\n"
                                  "partitions: {main: {default: true}, inter: {role: special, max_nodes: 1}}\n"
                                  "qos: {normal: {default: true, partitions: [main]}, interactive: {partitions: [inter], max_time: 60}}\n"
                                  "sources: [t]\n")
    p = plan("q2", qos="interactive")
    assert (p.resources.partition, p.resources.qos) == ("inter", "interactive")
    assert p.origins["partition"] == "the partition of QoS interactive"
    assert plan("q2").resources.partition == "main"


# -- verdicts the site twins (tests/cluster/test_twins.py) showed Slurm gives ---------------------
def test_no_node_count_on_a_partition_with_min_nodes_gets_its_min() -> None:
    """Slurm gives a job that names no node count the partition's MinNodes: so does the plan."""
    p = plan("karolina-gpu", partition="qgpu_big", gpus_per_node=8, account="EU-25-92", time="1h")
    assert p.resources.nodes == 17 and p.origins["nodes"] == "partition qgpu_big MinNodes"
    assert "#SBATCH --nodes=17\n" in p.script


def test_one_rank_per_gpu_default_gives_way_to_the_cores_asked_per_task() -> None:
    """8 GPUs and 56 cores per task: one rank per GPU would need 448 cores; Slurm starts 1 task."""
    p = plan("lumi-g", gpus_per_node=8, cpus_per_task=56, account="project_465001926", time="1h")
    assert p.resources.tasks_per_node == 1 and p.resources.cpus_per_task == 56
    assert any("one rank per GPU would take 8 x 56 cores" in n for n in p.notes)
    (problem,) = problems("lumi-g", gpus_per_node=8, tasks_per_node=8, cpus_per_task=56, account="project_465001926", time="1h")
    assert problem.param == "cpus_per_task"  # asked for 8 tasks: refused, as Slurm does


def test_the_only_qos_of_a_partition_is_chosen() -> None:
    p = plan("mn5-acc", partition="accinteractive", gpus_per_node=1, account="ehpc123", time="1h")
    assert p.resources.qos == "acc_interactive" and "#SBATCH --qos=acc_interactive\n" in p.script
    assert p.origins["qos"] == "the only QoS of partition accinteractive"


@pytest.mark.parametrize(("site", "account", "top"), [("meluxina-gpu", "p200301", 480), ("jupiter-booster", "e-dev-2026d09-128", 480)])
def test_memory_above_what_a_node_has_is_refused(site: str, account: str, top: int) -> None:
    (problem,) = problems(site, gpus_per_node=4, mem_gb=top + 1, account=account, time="1h")
    assert problem.param == "mem_gb" and f"at most {top} GB per node" in problem.allowed
    assert plan(site, gpus_per_node=4, mem_gb=top, account=account, time="1h").resources.mem_gb == top


def test_a_partition_billing_more_than_another_that_fits_is_a_warning() -> None:
    """A CPU-only job named onto node-exclusive standard-g runs there, billed whole nodes; small-g
    bills its cores: a warning with both bills, refused with strict=True."""
    p = plan("lumi-g", partition="standard-g", cpus_per_task=8, account="project_465001926", time="1h")
    (warning,) = p.warnings
    assert warning.param == "partition" and warning.value == "standard-g"
    assert "bills 4 GPU-h" in warning.waste and "partition small-g 0.5 GPU-h" in warning.waste
    assert warning.cheaper == "use partition='small-g'" and p.cost.amount == 4
    (problem,) = problems("lumi-g", partition="standard-g", cpus_per_task=8, account="project_465001926", time="1h", strict=True)
    assert problem.param == "partition" and "small-g" in problem.fix
    assert not plan("lumi-g", partition="small-g", cpus_per_task=8, account="project_465001926", time="1h").warnings


def test_submit_issues_the_budget_warnings_before_anything_else() -> None:
    """aifsdk.submit shows a plan's warnings as Python warnings first. Here the site is not this
    machine's cluster, so the submit is then refused: nothing is written or submitted."""
    p = plan("lumi-g", nodes=2, gpus_per_node=4, partition="standard-g", account="project_465001926", time="1h")
    with pytest.warns(UserWarning, match="node-exclusive.*strict=True refuses"), pytest.raises(aifsdk.RequestError):
        p.submit()
    assert not p.folder.exists()
