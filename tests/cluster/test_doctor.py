"""`aifsdk doctor` against the real local cluster (n1, n2: 2 fake GPUs each, partition debug).

Nothing is faked: the doctor reads the live sinfo/scontrol. The expected node sizes and limits are
read here with Slurm's own commands (a second path), not copied from the doctor's output.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import aifsdk
from aifsdk._doctor import doctor
from aifsdk.cli import EXIT_OK, EXIT_USAGE, run

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


def _slurm(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


def live_gpus_per_node() -> int:
    """The largest GPU count of a node in partition debug, from sinfo's GRES column."""
    counts = [int(m.group(1)) for m in re.finditer(r"gpu:(?:\w+:)?(\d+)", _slurm("sinfo", "-h", "-p", "debug", "-N", "-o", "%G"))]
    return max(counts)


def live_max_time() -> str:
    return _slurm("sinfo", "-h", "-p", "debug", "-o", "%l").split()[0]


def test_a_request_that_fits_passes(capsys: pytest.CaptureFixture[str]) -> None:
    gpus = live_gpus_per_node()
    report = doctor("slurm", {"nodes": 2, "gpus_per_node": gpus, "time": "1h"})
    assert report.problems == [] and report.request is not None
    assert {n.name for n in report.nodes} >= {"n1", "n2"} and "debug" in report.cluster.partitions
    assert run(["doctor", "--site", "slurm", "-N", "1", "--gpus-per-node", str(gpus)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"request (nodes=1, gpus_per_node={gpus}): fits" in out
    assert re.search(rf"node n1: \d+ CPUs, [\d.]+ GB, {gpus} GPUs \(gpu:fake:{gpus}\)", out)


def test_more_gpus_per_node_than_the_nodes_have_fails_naming_the_node_size(capsys: pytest.CaptureFixture[str]) -> None:
    gpus = live_gpus_per_node()
    report = doctor("slurm", {"nodes": 1, "gpus_per_node": gpus + 2})
    (problem,) = report.problems
    assert problem.param == "gpus_per_node" and problem.value == gpus + 2
    assert f"at most {gpus} GPUs per node" in problem.allowed and "n1,n2" in problem.allowed
    assert f"{gpus} GPUs (gpu:fake:{gpus})" in problem.allowed, "the node size is named"
    assert f"at most {gpus} GPUs per node" in problem.fix
    assert run(["doctor", "--site", "slurm", "-N", "1", "--gpus-per-node", str(gpus + 2)]) == EXIT_USAGE
    assert f"gpus_per_node={gpus + 2}: allowed at most {gpus} GPUs per node" in capsys.readouterr().out


def test_more_nodes_and_time_than_the_partition_has() -> None:
    report = doctor("slurm", {"nodes": 3, "time": "1d"})
    assert sorted(p.param for p in report.problems) == ["nodes", "time"]
    text = "\n".join(map(str, report.problems))
    assert "at most 2 on partition debug" in text and "MaxTime of partition debug" in text
    assert live_max_time().rjust(8, "0") in text


def test_profile_and_cluster_disagreements_are_reported(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user profile for this cluster that is wrong in five places: each is named, with a fix."""
    gpus = live_gpus_per_node()
    max_array = int(re.search(r"MaxArraySize\s*=\s*(\d+)", _slurm("scontrol", "show", "config")).group(1))  # type: ignore[union-attr]
    folder = clean_env / "config" / "site"
    folder.mkdir(parents=True)
    (folder / "ours.yaml").write_text(
        "executor: slurm\ndiscover: true\n"
        f"node: {{gpus: {gpus * 2}}}\nmax_array_size: {max_array + 1}\n"
        "partitions:\n"
        f"  debug: {{default: true, max_time: '8h', gpus_per_node: {gpus * 2}, node_count: 16}}\n"
        "  gpu: {max_nodes: 4}\n"
        "sources: [test]\n")
    report = doctor("ours")
    text = "\n".join(report.disagreements)
    assert "partitions.debug.max_time: profile 08:00:00, cluster " in text
    assert f"partitions.debug.gpus_per_node: profile {gpus * 2}, cluster {gpus}" in text
    assert "partitions.debug.node_count: profile 16, cluster 2" in text
    assert "partition gpu: in the profile, not on the cluster" in text
    assert f"node.gpus: profile {gpus * 2}, cluster nodes have at most {gpus}" in text
    assert f"max_array_size: profile {max_array + 1}, cluster MaxArraySize {max_array}" in text
    assert len(report.disagreements) == 6 and all("ours.yaml" in d for d in report.disagreements)
    assert run(["doctor", "--site", "ours"]) == EXIT_OK
    assert "differs: partitions.debug.max_time" in capsys.readouterr().out

    (folder / "ours.yaml").write_text(
        f"executor: slurm\ndiscover: true\nnode: {{gpus: {gpus}}}\nmax_array_size: {max_array}\n"
        f"partitions:\n  debug: {{default: true, max_time: '{live_max_time()}', gpus_per_node: {gpus}, node_count: 2}}\n"
        "sources: [test]\n")
    assert doctor("ours").disagreements == []


def test_doctor_refuses_a_site_that_is_not_slurm() -> None:
    with pytest.raises(aifsdk.SchedulerError, match="does not run on Slurm"):
        doctor("local")


def test_another_sites_profile_is_not_this_cluster() -> None:
    """Run against LUMI-G's profile here: every LUMI partition is named as missing, and the note says why."""
    report = doctor("lumi-g")
    assert {d.split(":")[0] for d in report.disagreements} >= {"partition standard-g", "partition small-g", "partition dev-g"}
    assert any("probably not lumi-g" in n for n in report.notes)
