from __future__ import annotations

import pytest

from aifsdk import RequestError, Resources
from aifsdk._resources import format_time, parse_time


@pytest.mark.parametrize(
    "text, minutes",
    [
        (90, 90), ("90", 90), ("90min", 90), ("90 min", 90), ("2h", 120), ("1.5h", 90), ("1d", 1440),
        ("45s", 1), ("1-12:00:00", 2160), ("01:30:00", 90), ("00:00:30", 1), ("30:00", 30), ("2-0", 2880),
        ("1-06:30", 1830), ("100:00:00", 6000),
    ],
)
def test_parse_time_accepts_every_documented_form(text: int | str, minutes: int) -> None:
    assert parse_time(text) == minutes


@pytest.mark.parametrize("bad", ["5 hours later", "1:61:00", "1-25:00:00", "", "h", -5, True, 1.5, "12:00:75"])
def test_parse_time_refuses_malformed(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_time(bad)  # type: ignore[arg-type]


def test_format_time_round_trips() -> None:
    for minutes in (1, 59, 60, 90, 1439, 1440, 2161, 10000):
        assert parse_time(format_time(minutes)) == minutes
    assert format_time(2160) == "1-12:00:00"
    assert format_time(30) == "00:30:00"


def test_resources_is_keyword_only() -> None:
    with pytest.raises(RequestError) as info:
        Resources(2)  # type: ignore[misc]
    assert "keyword arguments only" in str(info.value) and "Resources(nodes=2" in str(info.value)


def test_resources_checks_every_field_when_built_and_reports_them_all() -> None:
    with pytest.raises(RequestError) as info:
        Resources(nodes=0, gpus_per_node=-1, tasks_per_node=True, cpus_per_task="4", mem_gb=0, time="soon",  # type: ignore[arg-type]
                  partition="gpu;rm -rf", account="", qos="a b", constraint="a100 && ib",
                  extra={"mem": "4G", "mail_tpye": "END", "exclusive": ["x"]})
    problems = {p.param: p for p in info.value.problems}
    expected = {"nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "mem_gb", "time", "partition",
                "account", "qos", "constraint", "extra['mem']", "extra['mail_tpye']", "extra['exclusive']"}
    assert set(problems) == expected
    assert "mem_gb" in problems["extra['mem']"].fix
    assert "mail-type" in problems["extra['mail_tpye']"].fix
    assert problems["nodes"].value == 0


@pytest.mark.parametrize("key, meant", [("gpus", "gpus_per_node"), ("GPUS_PER_NODE", "gpus_per_node"), ("ntasks", "tasks_per_node"),
                                        ("mem", "mem_gb"), ("walltime", "time"), ("Nodes", "nodes"), ("cpus-per-task", "cpus_per_task")])
def test_an_unknown_keyword_names_the_field_meant(key: str, meant: str) -> None:
    with pytest.raises(RequestError) as info:
        Resources(**{key: 4})
    (problem,) = info.value.problems
    assert (problem.param, problem.value) == (key, 4)
    assert f"did you mean {meant}=?" == problem.fix


def test_an_unknown_keyword_and_a_bad_field_are_reported_together() -> None:
    with pytest.raises(RequestError) as info:
        Resources(gpus=4, nodes=-1)  # type: ignore[call-arg]
    assert [p.param for p in info.value.problems] == ["gpus", "nodes"]


def test_replace_is_checked_too() -> None:
    with pytest.raises(RequestError):
        Resources(nodes=2).replace(nodes=0)


def test_repr_shows_the_fields_that_are_set() -> None:
    assert repr(Resources(nodes=2, time="1h")) == "Resources(nodes=2, time='1h')"


def test_valid_request_has_no_problems() -> None:
    r = Resources(nodes=2, gpus_per_node=8, tasks_per_node=8, cpus_per_task=7, mem_gb=480, time="2h",
                  partition="standard-g", account="project_465000001", qos="normal", constraint="a100&ib",
                  extra={"exclusive": True, "mail-type": "END"})
    assert r.problems() == []
    assert r.time_minutes == 120
