"""False positives of the secret guard: run it on real trees that hold no secrets and list what it flags.

    .venv/bin/python -m tools.secret_guard_fp FOLDER [FOLDER ...] [--json]

Each folder is listed as a snapshot would list it (git's tracked and untracked-not-ignored files,
minus aifsdk's default ignores) and every file goes through the guard (names, paths, whole-file
text patterns), as at plan time. Every flag on a public project is counted as a false positive
unless its line really holds a credential; the flagged files are printed with the pattern that
matched so that each can be looked at. Uses a throwaway AIFSDK_HOME (no file index reused).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def scan(folder: Path) -> dict:
    from aifsdk._snapshot import check_secrets, list_files

    start = time.perf_counter()
    names = list_files(folder)
    size = sum(os.lstat(folder / n).st_size for n in names)
    problems = check_secrets(folder, names, ())
    return {"folder": str(folder), "files": len(names), "mb": round(size / 2**20, 1), "flagged": len(problems),
            "rate_percent": round(100 * len(problems) / max(len(names), 1), 3), "seconds": round(time.perf_counter() - start, 2),
            "hits": [{"file": str(p.value), "why": p.fix.split(" matched (")[0],
                      "pattern": p.fix.split(" matched (")[1].split("); ")[0] if " matched (" in p.fix else ""} for p in problems]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ["AIFSDK_HOME"] = tempfile.mkdtemp(prefix="aifsdk-fp-")
    rows = [scan(f.resolve()) for f in args.folders]
    total = {"files": sum(r["files"] for r in rows), "flagged": sum(r["flagged"] for r in rows)}
    total["rate_percent"] = round(100 * total["flagged"] / max(total["files"], 1), 3)
    if args.json:
        print(json.dumps({"trees": rows, "total": total}, indent=2))
        return 0
    for r in rows:
        print(f"{r['folder']}: {r['flagged']} of {r['files']} files flagged ({r['rate_percent']}%), {r['mb']} MB in {r['seconds']} s")
        for hit in r["hits"]:
            print(f"    {hit['file']}: {hit['why']}")
    print(f"all: {total['flagged']} of {total['files']} files flagged ({total['rate_percent']}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
