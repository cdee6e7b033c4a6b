"""A sorted set stays O(log n) per ZADD, ZRANK and ZRANGEBYSCORE LIMIT as it grows to 1M members.

The figures come from ``bench/zset_scale.py`` (in-process, through the full dispatcher). Each
bound is a fifth of what a linear step would show (an O(n) step costs 25 times more from 2k to
50k members and 100 times more from 10k to 1M), so an O(n) regression fails it five times over. The
bounds sit well above the pure O(log n) growth (about 1.5 times) on purpose: once a set outgrows
the CPU caches every random lookup misses them, and that alone measured 2.7x (idle machine) to
4.9x (CI) for ZRANK from 10k to 1M members.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parent.parent / "bench" / "zset_scale.py"


def _bench():
    spec = importlib.util.spec_from_file_location("zset_scale", _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_flat(results: dict[int, dict[str, float]]) -> None:
    """Every command's growth from the smallest to the largest size is under a fifth of linear."""
    smallest, largest = min(results), max(results)
    bound = largest / smallest / 5
    for name, base in results[smallest].items():
        grown = results[largest][name]
        assert grown < bound * base, f"{name}: {base:.2f} us at {smallest} but {grown:.2f} us at {largest}"


def test_per_call_cost_is_flat_from_2k_to_50k():
    _assert_flat(_bench().run([2_000, 50_000]))


@pytest.mark.slow
@pytest.mark.timeout(900)  # building a million members takes ~10 s alone, far more on a busy machine
def test_per_call_cost_is_flat_up_to_a_million(capsys):
    results = _bench().run([10_000, 100_000, 1_000_000])
    with capsys.disabled():
        for size, figures in results.items():
            print(f"\n{size:>9} members: " + ", ".join(f"{name} {us:.2f} us" for name, us in figures.items()))
    _assert_flat(results)
