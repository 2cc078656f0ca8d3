"""aifsdk.measure: exact statistics with a fake clock, and a real torch training step on this CPU."""

from __future__ import annotations

import pytest

import aifsdk
from aifsdk._stats import percentile


class ScriptedStep:
    """A step whose duration is scripted on a fake clock (the clock seam of measure)."""

    def __init__(self, durations: list[float]) -> None:
        self.durations = list(durations)
        self.now = 0.0
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def __call__(self) -> None:
        self.now += self.durations[self.calls % len(self.durations)]
        self.calls += 1


def test_statistics_are_exact_with_a_fake_clock() -> None:
    durations = [0.5, 0.5, 0.5] + [0.10, 0.12, 0.11, 0.13, 0.10, 0.20, 0.11, 0.12, 0.10, 0.11]  # 3 slow warm-up steps
    step = ScriptedStep(durations)
    m = aifsdk.measure(step, items_per_step=32, steps=10, warmup=3, clock=step.clock, sync=lambda: None, site="lumi-g")
    timed = durations[3:]
    assert step.calls == 13
    assert m.items_per_s == pytest.approx(32 / 0.11)  # the median step, warm-up excluded
    assert m.p10 == pytest.approx(32 / percentile(timed, 0.9)) and m.p90 == pytest.approx(32 / percentile(timed, 0.1))
    assert m.p10 < m.items_per_s < m.p90 and m.site == "lumi-g" and m.devices == 1
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5 and percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)


def test_devices_multiply_the_job_throughput() -> None:
    step = ScriptedStep([0.25])
    m = aifsdk.measure(step, items_per_step=8, steps=5, warmup=0, devices=4, clock=step.clock, sync=lambda: None)
    assert m.devices == 4 and m.items_per_s == pytest.approx(4 * 8 / 0.25)


def test_the_site_defaults_to_the_jobs_aifsdk_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a job aifsdk's sbatch script exports AIFSDK_SITE (tests/unit/expected/*.sbatch)."""
    step = ScriptedStep([0.25])
    monkeypatch.delenv("AIFSDK_SITE", raising=False)
    assert aifsdk.measure(step, items_per_step=8, steps=5, warmup=0, clock=step.clock, sync=lambda: None).site == ""
    monkeypatch.setenv("AIFSDK_SITE", "leonardo-booster")
    assert aifsdk.measure(step, items_per_step=8, steps=5, warmup=0, clock=step.clock, sync=lambda: None).site == "leonardo-booster"
    assert aifsdk.measure(step, items_per_step=8, steps=5, warmup=0, clock=step.clock, sync=lambda: None, site="lumi-g").site == "lumi-g"


def test_a_real_torch_step_on_cpu() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    m = aifsdk.measure(step, items_per_step=32, steps=10, warmup=2, site="lumi-g")
    assert m.devices == 1 and m.items_per_s > 0 and m.p10 <= m.items_per_s <= m.p90
    assert "10 steps after 2 warm-up" in m.source
    # what one hour at the measured mean step processes takes one hour, on one GCD of a LUMI-G node
    assert m.mean_items_per_s is not None and m.mean_ci is not None and m.mean_ci[0] <= m.mean_items_per_s <= m.mean_ci[1]
    s = aifsdk.size(m, work=m.mean_items_per_s * 3600, site="lumi-g", overheads={"eval": 0, "checkpoint": 0, "io": 0, "startup": 0},
                    availability=1)
    assert s.hours_per_run == pytest.approx(1.0, rel=1e-3) and (s.nodes, s.gpus_per_node) == (1, 1) and s.projection is None


def test_bad_arguments_are_named() -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.measure(lambda: None, items_per_step=0, steps=2, warmup=-1, unit="images")
    assert {p.param for p in info.value.problems} == {"items_per_step", "steps", "warmup", "unit"}


class StallingStep(ScriptedStep):
    """Steps of 100 ms +- 5 ms (seeded), every 20th one stalled to 600 ms (a data-loader refill, a
    checkpoint flush): skewed step times, whose median is far below their mean."""

    def __init__(self, seed: int) -> None:
        import random

        rng = random.Random(seed)
        super().__init__([])
        self.rng = rng

    def duration(self, i: int) -> float:
        return 0.6 if i % 20 == 19 else self.rng.uniform(0.095, 0.105)

    def __call__(self) -> None:
        self.now += self.duration(self.calls)
        self.calls += 1


def test_wall_time_follows_the_mean_step_with_skewed_step_times() -> None:
    """Measure 100 skewed steps, size a 20,000-step run from them, then 'run' it on the same
    simulated step times: the prediction is within 5 % of the simulated total (the median would be
    ~20 % short, which the second assertion shows so that this test can fail)."""
    step = StallingStep(seed=7)
    m = aifsdk.measure(step, items_per_step=32, steps=100, warmup=0, clock=step.clock, sync=lambda: None, site="lumi-g")
    run = StallingStep(seed=8)
    total_steps = 20_000
    simulated_s = sum(run.duration(i) for i in range(total_steps))
    none = {"eval": 0, "checkpoint": 0, "io": 0, "startup": 0}
    s = aifsdk.size(m, work=32 * total_steps, site="lumi-g", overheads=none, availability=1)
    predicted_s = s.hours_per_run * 3600
    assert abs(predicted_s - simulated_s) / simulated_s < 0.05
    from_median_s = 32 * total_steps / m.items_per_s
    assert (simulated_s - from_median_s) / simulated_s > 0.15
    assert m.mean_ci is not None and m.mean_ci[0] <= m.mean_items_per_s <= m.mean_ci[1]
    assert s.hours_per_run_ci is not None and s.hours_per_run_ci[0] <= s.hours_per_run <= s.hours_per_run_ci[1]
    assert "mean step; 95% CI" in s.text() and "mean 1" in m.source
    assert s.hours_per_run_range[0] <= s.hours_per_run <= s.hours_per_run_range[1]
