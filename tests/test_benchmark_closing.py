"""benchmarks/closing.py: an engine's grammar-masked decoding cut at the budget + repair, vs blockgen's closing."""

from __future__ import annotations

import json

import pytest


def test_engine_outputs_cut_by_the_budget_are_repaired_even_when_they_parse():
    from benchmarks.closing import engine_record

    done = engine_record("(climate OR warming) AND media", cut_off=False)
    assert done["valid"] and not done["repaired"] and done["terms"] == 3 and done["lost_terms"] == 0
    cut = engine_record("climate change AND soc", cut_off=True)  # parses, but "soc" may be half a word
    assert cut["valid_raw"] and cut["repaired"] and cut["text"] == "climate change" and cut["lost_terms"] == 0
    broken = engine_record('("climate change" OR warming) AND (media OR "soc', cut_off=True)
    assert not broken["valid_raw"] and broken["valid"] and broken["terms"] == 3
    nothing = engine_record("clim", cut_off=True)  # only a half-written word: no query at all
    assert not nothing["valid"] and nothing["text"] is None


def test_summary_counts_shares_and_means():
    from benchmarks.closing import summarize

    rows = [
        {"valid_raw": True, "valid": True, "repaired": False, "cut_off": False, "terms": 4, "lost_terms": 0, "similarity": 0.8},
        {"valid_raw": False, "valid": False, "repaired": False, "cut_off": True, "terms": 0, "lost_terms": 2},
    ]
    s = summarize(rows)
    assert (s["samples"], s["valid_raw"], s["valid_final"], s["cut_off"]) == (2, 0.5, 0.5, 0.5)
    assert s["terms_per_query"] == 4 and s["lost_terms_per_query"] == 1 and s["similarity"] == pytest.approx(0.8)


def test_closing_smoke_run_on_a_tiny_model(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("blockgen.generate")
    from benchmarks import closing
    from tests.tiny_models import save_tiny_llama, small_tokenizer

    model = save_tiny_llama(tmp_path / "tiny", small_tokenizer())
    prompts = tmp_path / "p.txt"
    prompts.write_text("climate change\nstainless steel\n", encoding="utf-8")
    out = tmp_path / "out"
    code = closing.main(["--model", str(model), "--prompts", str(prompts), "--n", "2", "--budgets", "4,8", "--no-similarity", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "closing.json").read_text())
    rows = {(r["budget"], r["way"]): r for r in data["summary"]}
    assert set(rows) == {(4, "engine"), (4, "blockgen"), (8, "engine"), (8, "blockgen")}
    assert all(r["samples"] == 4 for r in rows.values())
    assert rows[(4, "blockgen")]["valid_final"] == 1.0  # budget-aware closing: every output parses
    assert (out / "closing.png").is_file()
