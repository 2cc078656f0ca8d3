"""Print a site twin's node lines: each `NodeName=RANGE KEY=VALUE...` of a twin file becomes
`NodeName=DEFAULT KEY=VALUE... State=CLOUD` and one `NodeName=NAME NodeAddr=127.0.0.1` per node
(slurmctld stalls about 10 s on each node name that does not resolve). Other lines pass as they are.

    python3 expand_nodes.py tests/cluster/twins/lumi-g.conf
"""

import re
import sys


def expand(spec: str) -> list[str]:
    """nid[005000-005002],gpu7 -> nid005000 nid005001 nid005002 gpu7 (zero padding kept)."""
    names = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,\[]*", spec):
        m = re.fullmatch(r"([^\[]*)\[([^\]]*)\](.*)", part)
        if not m:
            names.append(part)
            continue
        head, ranges, tail = m.groups()
        for r in ranges.split(","):
            lo, _, hi = r.partition("-")
            names += [f"{head}{n:0{len(lo)}d}{tail}" for n in range(int(lo), int(hi or lo) + 1)]
    return names


def main(path: str) -> None:
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*NodeName=(\S+)\s*(.*)", line)
        if not m or m.group(1) == "DEFAULT":
            sys.stdout.write(line)
            continue
        print(f"NodeName=DEFAULT {m.group(2).strip()} State=CLOUD")
        for name in expand(m.group(1)):
            print(f"NodeName={name} NodeAddr=127.0.0.1")


if __name__ == "__main__":
    main(sys.argv[1])
