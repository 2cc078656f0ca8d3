"""The site twins' files (tests/cluster/twins/): one per site the verdict test covers, each naming
the public documents it was written from, none copied from aifsdk's profile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TWINS = Path(__file__).resolve().parents[1] / "cluster" / "twins"
SITES = ["lumi-g", "leonardo-booster", "jupiter-booster", "mn5-acc", "meluxina-gpu", "karolina-gpu"]
# a web address or a public repository path, in a comment
SOURCE = re.compile(r"^#.*(\b[\w-]+\.(?:eu|cz|lu|it|de|es)\b|[\w-]+/[\w.-]+ [\w./-]+\.(?:md|rst|html))", re.M)


@pytest.mark.parametrize("site", SITES)
def test_every_twin_names_its_sources(site: str) -> None:
    text = (TWINS / f"{site}.conf").read_text()
    assert SOURCE.search(text), f"{site}.conf names no public source"
    assert "aifsdk's profile" in text and "not from" in text, "the file says it was not written from the profile"
    assert re.search(r"^NodeName=\S+ CPUs=\d+ RealMemory=\d+ Gres=gpu:\d+$", text, re.M)
    assert re.search(r"^PartitionName=\S+ Nodes=ALL", text, re.M)


def test_the_twin_script_knows_each_site_and_nothing_else() -> None:
    script = (TWINS / "twins.sh").read_text()
    listed = re.search(r"^TWIN_SITES=\(([^)]*)\)", script, re.M)
    assert listed and listed.group(1).split() == SITES
    assert sorted(p.stem for p in TWINS.glob("*.conf")) == sorted(SITES)
    for qos in TWINS.glob("*.qos"):
        kinds = {line.split()[0] for line in qos.read_text().splitlines() if line.strip() and not line.startswith("#")}
        assert kinds <= {"account", "default", "qos", "restricted"} and "account" in kinds, qos.name
