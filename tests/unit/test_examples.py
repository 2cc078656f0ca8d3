"""Every example in examples/ runs (cluster examples are run by tests/cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_first_job_runs_on_local() -> None:
    out = subprocess.run([sys.executable, str(REPO / "examples" / "first_job.py")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'sum_of_squares': 332833500" in out.stdout


def test_hydra_app_picks_site_and_resources_on_the_command_line(tmp_path: Path) -> None:
    """examples/hydra_app.py: runs on local by default; `site=lumi-g resources.nodes=2 ...` plans for LUMI-G."""
    app = str(REPO / "examples" / "hydra_app.py")
    out = subprocess.run([sys.executable, app], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "'sum_of_squares': 332833500" in out.stdout
    out = subprocess.run([sys.executable, app, "site=lumi-g", "resources.nodes=2", "resources.gpus_per_node=8",
                          "resources.account=project_465000001", "dry_run=true"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "#SBATCH --partition=standard-g\n" in out.stdout and "#SBATCH --nodes=2\n" in out.stdout
    assert "#SBATCH --account=project_465000001\n" in out.stdout and "#SBATCH --time=00:10:00\n" in out.stdout
    assert list(tmp_path.iterdir()) == [], "the app writes no Hydra output folder"


def test_size_request_example() -> None:
    out = subprocess.run([sys.executable, str(REPO / "examples" / "size_request.py")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # 16 devices (95% efficient) = 2 nodes; 1.08e8 samples / 1900 per s x 1.12 overheads = 17.7 h per run
    assert "2 node(s) x 8 GPU(s) = 16 devices (parallel efficiency 95%)" in out.stdout
    assert "in 17.7 h" in out.stdout and "| 16 | 1,900.0 samples/s" in out.stdout


def test_proposal_example_writes_a_report(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "aifsdk", "proposal", str(REPO / "examples" / "request.yaml"), "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = (tmp_path / "r" / "report.md").read_text()
    # WP1: 32 devices at 82% = 4 nodes; WP2: one size measured, so the report says there is no scaling evidence
    assert "| WP1 pre-training (3D U-Net, 3 seeds) | lumi-g, standard-g | 4 node(s) x 8 GPU(s) | 82% |" in report
    assert "one job size measured: no scaling evidence" in report and (tmp_path / "r" / "wp1-pre-training-3d-u-net-3-seeds.png").exists()
