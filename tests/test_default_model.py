"""The default model embedded in the package (blockgen/default_model, built by training.train_default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blockgen import is_valid
from training.train_default import SIZE_LIMIT

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning"),
    pytest.mark.skipif(
        not (Path(__file__).resolve().parent.parent / "blockgen" / "default_model" / "base" / "config.json").is_file(),
        reason="the default model is not built (python -m training.train_default --data training/data --out blockgen/default_model)",
    ),
]

SHIPPED = Path(__file__).resolve().parent.parent / "blockgen" / "default_model"


def test_shipped_model_fits_the_size_limit():
    files = [f for d in ("base", "adapter") for f in (SHIPPED / d).iterdir()]
    assert {"model.safetensors", "adapter_model.safetensors", "tokenizer.json"} <= {f.name for f in files}
    assert sum(f.stat().st_size for f in files) <= SIZE_LIMIT


def test_default_generator_writes_valid_queries():
    from blockgen.generate import QueryGenerator

    gen = QueryGenerator.default()
    [cands] = gen.generate(["climate change"], n=3, max_new_tokens=32, seed=0)
    assert len(cands) == 3
    assert all(c.valid and is_valid(c.text) for c in cands), [c.text for c in cands]


def test_shipped_model_samples_with_the_recipes_defaults():
    from blockgen.generate import QueryGenerator
    from training.train_default import SAMPLING

    assert QueryGenerator.default().sampling_defaults() == (SAMPLING["temperature"], SAMPLING["top_p"])
