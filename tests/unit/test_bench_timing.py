"""The timing loop, with a fake clock and fake device events (a seam of Timer: no GPU here)."""

from __future__ import annotations

import pytest

from benchmarks._timing import CacheFlusher, Timer, TimingConfig


class FakeClock:
    """Time advances only when the measured function says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sample_count_fills_min_time_within_bounds() -> None:
    t = Timer(TimingConfig(min_samples=5, max_samples=50, min_time_s=1.0))
    assert t.sample_count(0.1) == 11
    assert t.sample_count(1.0) == 5       # at least min_samples
    assert t.sample_count(0.001) == 50    # at most max_samples
    assert t.sample_count(0.0) == 50
    capped = Timer(TimingConfig(min_samples=10, max_samples=50, min_time_s=1.0, max_time_s=6.0))
    assert capped.sample_count(1.0) == 6     # 6 s of 1 s calls, below min_samples on purpose
    assert capped.sample_count(5.0) == 3     # never fewer than 3
    assert capped.sample_count(0.01) == 50   # fast calls: the cap does not bind


def test_host_clock_path_syncs_around_each_call_and_flushes_outside_the_timed_region() -> None:
    clock = FakeClock()
    log: list[str] = []
    durations = iter([0.5] * 3 + [1.0, 2.0, 3.0, 4.0, 5.0])  # 3 warm-up calls, then 5 samples

    def fn() -> None:
        log.append("fn")
        clock.now += next(durations)

    def flush() -> None:
        log.append("flush")
        clock.now += 100.0  # a slow flush must not be counted

    timer = Timer(TimingConfig(warmup_iters=3, min_samples=5, max_samples=5, min_time_s=0.0), sync=lambda: log.append("sync"),
                  flush=flush, clock=clock)
    samples = timer.measure(fn)
    assert samples == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert log[:5] == ["sync", "fn", "fn", "fn", "sync"]          # warm-up, then one sync
    assert log[5:10] == ["flush", "sync", "fn", "sync", "flush"]  # flush before the sync and the clock


def test_warmup_estimate_sets_the_number_of_samples() -> None:
    clock = FakeClock()

    def fn() -> None:
        clock.now += 0.1

    timer = Timer(TimingConfig(warmup_iters=2, min_samples=3, max_samples=100, min_time_s=1.0, flush_cache=False), clock=clock)
    assert len(timer.measure(fn)) == 11  # 1.0 s / 0.1 s + 1


class FakeEvent:
    """A CUDA-event stand-in: record() stamps the fake clock, elapsed_time() is in ms."""

    def __init__(self, clock: FakeClock, synced: list[int]) -> None:
        self.clock, self.synced, self.t = clock, synced, None

    def record(self) -> None:
        self.t = self.clock.now

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.synced, "elapsed_time read before the device was synchronised"
        return (end.t - self.t) * 1e3


def test_event_path_records_all_events_then_syncs_once() -> None:
    clock = FakeClock()
    syncs: list[int] = []
    durations = iter([0.2, 0.2, 0.25, 0.5, 0.75])

    def fn() -> None:
        clock.now += next(durations)

    timer = Timer(TimingConfig(warmup_iters=2, min_samples=3, max_samples=3, min_time_s=0.0, flush_cache=False),
                  sync=lambda: syncs.append(1), events=lambda: FakeEvent(clock, syncs), clock=clock)
    samples = timer.measure(fn)
    assert samples == pytest.approx([0.25, 0.5, 0.75])
    assert len(syncs) == 3  # two around the warm-up, one after all events were recorded


def test_device_warmup_runs_for_the_budget() -> None:
    clock = FakeClock()

    def fn() -> None:
        clock.now += 1.0

    timer = Timer(TimingConfig(device_warmup_s=5.0), clock=clock)
    assert timer.warm_device(fn) == 5


def test_cache_flusher_zeroes_a_real_buffer() -> None:
    torch = pytest.importorskip("torch")
    f = CacheFlusher(4096, "cpu", torch)
    f.buffer.fill_(7)
    f()
    assert f.buffer.numel() == 1024 and int(f.buffer.abs().sum()) == 0


def test_bad_timing_config_names_the_fields() -> None:
    with pytest.raises(ValueError, match="min_samples=5, max_samples=2.*Fix"):
        TimingConfig(min_samples=5, max_samples=2)
