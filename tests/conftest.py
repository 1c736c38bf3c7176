"""Shared fixtures: where the real public data lives, and hypothesis profiles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# from_lark draws words and then keeps those the grammar's WORD matches: on a loaded machine
# that filtering can trip the filter_too_much health check although every test still runs.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
# `HYPOTHESIS_PROFILE=thorough`: three times CI's examples, for a change to the grammar or decoding.
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

ROOT = Path(__file__).resolve().parent.parent

# The test models are tiny: one thread is faster than two, and does not stall when
# something else uses the other core (OpenMP threads spin while they wait).
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a dependency
    pass


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (or ``$BLOCKGEN_SHARED_DATA``)."""
    return Path(os.environ.get("BLOCKGEN_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "sim4ia").is_dir():
        pytest.skip(f"the shared data folder is not at {path} (set BLOCKGEN_SHARED_DATA)")
    return path


def run_queries(path: Path) -> list[str]:
    """All candidate queries of a Sim4IA Task A1 run file."""
    run = json.loads(path.read_text(encoding="utf-8"))
    return [q for key, qs in run.items() if key != "meta" for q in qs]
