#!/usr/bin/env bash
# The one-shot GPU check on a GPU node that has a CUDA build of torch but cannot reach a package
# index (common on compute nodes): aifsdk's pure-Python dependencies travel as wheels.
#
#   bash tools/gpu_check_offline.sh wheels          # where pip can download: the wheels into .whl/ (git-ignored)
#   bash tools/gpu_check_offline.sh run OUTDIR      # on the GPU node, from the repository root: install them into
#                                                   # /tmp/aifsdk-site, run python -m benchmarks.gpu_check (7 min budget)
#                                                   # and copy its reports into OUTDIR (check.md, check.json, results.json,
#                                                   # the quick suite's table.md, the log)
#
# PYTHON (default python3) is the interpreter that holds the CUDA torch; its version picks the wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
case "${1:-}" in
  wheels)
    ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    ver=${PYVERSION:-$ver}
    rm -rf .whl && mkdir .whl   # one version of each: two would stop the install
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$ver" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl hydra-core==1.3.8 omegaconf==2.3.1 submitit==1.5.4
    "$PY" -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==4.9.3"   # hydra's parser runtime: published as a source archive only
    ls .whl
    ;;
  run)
    out=${2:?"usage: $0 run OUTDIR"}
    mkdir -p "$out"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/aifsdk-site .whl/*.whl
    export PYTHONPATH="/tmp/aifsdk-site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    rm -rf /tmp/aifsdk-gpu-check
    set +e
    "$PY" -m benchmarks.gpu_check --results-dir /tmp/aifsdk-gpu-check --budget-s "${BUDGET_S:-420}" 2>&1 | tee "$out/log.txt"
    rc=${PIPESTATUS[0]}
    set -e
    folder=$(ls -d /tmp/aifsdk-gpu-check/gpu-check-* 2>/dev/null | head -1)
    if [ -n "$folder" ]; then cp "$folder/check.md" "$folder/check.json" "$folder/results.json" "$out/"; fi
    suite=$(ls -d /tmp/aifsdk-gpu-check/suite/*/ 2>/dev/null | head -1)
    if [ -n "$suite" ]; then cp "$suite/table.md" "$out/suite-table.md"; fi
    exit "$rc"
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
