"""`python -m benchmarks`: compose the Hydra config, run the suite, print the table, write the run.

    python -m benchmarks                                       # quick suite on the detected device
    python -m benchmarks suite=healthcare workload.batch_size=4 dtype=bf16
    python -m benchmarks --multirun workload.batch_size=2,4 suite=healthcare
    python -m benchmarks suite=allreduce site=slurm

Configs: configs/benchmarks.yaml and the groups configs/suite/, configs/workload/, configs/site/.
Results: a new folder per run under ``results_dir`` (see benchmarks.results); compare runs with
``python -m benchmarks.report RUN [RUN ...]``.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from aifsdk._profile import shipped_config_dir
from benchmarks._suite import run_suite
from benchmarks._table import format_table
from benchmarks.protocol import benchmarks_of
from benchmarks.results import new_run_folder, save

CONFIG_DIR = str(shipped_config_dir())


@hydra.main(config_path=CONFIG_DIR, config_name="benchmarks", version_base="1.3")
def main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    document, failed = run_suite(cfg, list(hc.overrides.task), hc.runtime.choices.get("site"))
    table = format_table(document)
    folder = new_run_folder(cfg.results_dir, document["run_id"])
    save(document, folder, table, OmegaConf.to_yaml(cfg))
    written = [text for bench in benchmarks_of(document).values() if (text := bench.finish(document, folder))]
    if cfg.print_table:
        print(table)
        for text in written:
            print(text)
    print(f"results: {folder}")
    if failed:
        print(f"{failed} benchmark(s) failed; their errors are in {folder / 'results.json'}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
