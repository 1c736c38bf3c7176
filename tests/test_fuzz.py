"""The bounded, deterministic share of the fuzz harness that CI runs (benchmarks.fuzz).

Every input class of :mod:`benchmarks.fuzz_inputs` (sizes bounded) goes through every check of
:mod:`benchmarks.fuzz_checks`: no function raises an exception it does not document, and no
invariant fails (repair's output always parses, is the identity on valid queries and is
idempotent; parse(format(q, style)) == q; ...). ``derandomize=True``: the same inputs on every
run. The full harness is ``python -m benchmarks.fuzz --n 1000000``.

:data:`KNOWN_FAILURES` keeps out the (class, check) pairs that still fail because of a bug
listed in ``../fuzz-findings.md``; remove a pair once its fix is merged. The size bounds of
:data:`CI_SHARE` keep the deep and chain classes below the depths that still overflow the
recursive parser (issue 10, core fix); raise them with the fix.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from benchmarks.fuzz import compact_repr
from benchmarks.fuzz_checks import CHECKS, Broken
from benchmarks.fuzz_inputs import CLASSES, mutate, strategy, variants

#: Input class -> (examples, size bound): about 30 s in all on a loaded 2-core machine.
CI_SHARE = {
    "grammar": (40, None),
    "mutated": (60, None),
    "unicode": (60, None),
    "bytes": (80, None),
    "deep": (15, 60),
    "chain": (15, 40),
    "ovid": (15, 30),
    "answers": (40, None),
}

#: (class, check) pairs kept out of CI until their fix is merged (see ../fuzz-findings.md);
#: "*" stands for every class or every check.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def _checks_for(cls: str) -> dict:
    return {name: check for name, check in CHECKS.items()
            if not {(cls, name), (cls, "*"), ("*", name)} & set(KNOWN_FAILURES)}


def test_the_ci_share_covers_every_class_and_check():
    assert set(CI_SHARE) == set(CLASSES)
    assert {"parse", "format", "repair", "shortest_completion", "convert_ovid", "extract_query"} <= set(CHECKS)
    assert {name for name in CHECKS if name.startswith(("read:", "write:"))} >= {"read:pubmed", "read:ovid", "read:lucene",
                                                                                 "write:pubmed", "write:ovid", "write:lucene"}


@pytest.mark.parametrize("cls", list(CI_SHARE))
def test_no_function_crashes_or_breaks_an_invariant_on_fuzzed_input(cls):
    examples, bound = CI_SHARE[cls]
    checks = _checks_for(cls)
    problems: dict[str, str] = {}  # check -> the first problem (every check is run on every input)

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(strategy(cls, bound))
    def run(text):
        for name, check in checks.items():
            try:
                check(text)
            except Broken as err:
                problems.setdefault(name, f"invariant failure: {err} on {compact_repr(text, 200)}")
            except Exception as err:  # noqa: BLE001 - any undocumented exception is a crash
                problems.setdefault(name, f"crash: {type(err).__name__}: {str(err)[:150]} on {compact_repr(text, 200)}")

    run()
    assert not problems, "\n".join(f"{name}: {problem}" for name, problem in sorted(problems.items()))


# ---------------------------------------------------------------- the harness itself


def test_the_checks_report_a_crash_and_a_broken_invariant(monkeypatch):
    import benchmarks.fuzz_checks as checks

    monkeypatch.setattr(checks, "shortest_completion", lambda text: ")")  # a wrong answer on a valid query
    with pytest.raises(Broken):
        checks.check_shortest_completion("a")
    monkeypatch.setattr(checks, "convert_ovid", lambda text: 1 / 0)  # an undocumented exception
    with pytest.raises(ZeroDivisionError):
        checks.check_convert_ovid("a")


def test_a_run_counts_inputs_crashes_and_failures_per_function(monkeypatch):
    from benchmarks import fuzz

    def flaky(text):
        if "(" in text:
            raise RecursionError("deep")
        if '"' in text:
            raise Broken("wrong")

    run = fuzz.Run({"flaky": fuzz.Record("flaky")})
    for text in ["a", "(a)", '"a"', "((b))"]:
        fuzz.run_one("grammar", text, {"flaky": flaky}, run, timeout=0, slow=60)
    record = run.records["flaky"]
    assert (record.inputs, record.crashes, record.failures, record.timeouts) == (4, 2, 1, 0)
    found = fuzz.findings_rows(run)
    assert {(f["kind"], f["count"], f["example"]) for f in found} == {("crash", 2, "'(a)'"), ("failure", 1, '\'"a"\'')}


def test_compact_repr_writes_runs_as_repetitions_and_evaluates_back():
    text = "(" * 200 + "a" + ")" * 200 + " AND b" * 50
    short = compact_repr(text, limit=None)
    assert short == "'('*200 + 'a' + ')'*200 + ' AND b'*50"
    assert eval(short) == text  # noqa: S307 - our own repr
    long = "".join(chr(97 + i % 26) + str(i) for i in range(300))
    assert compact_repr(long, limit=20).endswith(f"... ({len(long)} chars)")


def test_mutations_and_variants_are_reproducible():
    assert mutate("abc", [("delete", 1, 1, ""), ("insert", 0, 1, "(")]) == "(ac"
    assert variants("a AND b", 7, 4) == variants("a AND b", 7, 4)
    assert variants("a AND b", 7, 4)[0] == "a AND b" and len(variants("a AND b", 7, 4)) == 4


def test_without_the_shared_data_the_harness_says_so_and_uses_built_in_seeds(monkeypatch, tmp_path):
    from benchmarks import fuzz_inputs

    monkeypatch.setenv("BLOCKGEN_SHARED_DATA", str(tmp_path / "absent"))
    fuzz_inputs.corpus.cache_clear()
    try:
        data = fuzz_inputs.corpus()
        assert data.queries == () and data.strategies == fuzz_inputs.BUILTIN_STRATEGIES
        assert "built-in seeds only" in data.source
    finally:
        fuzz_inputs.corpus.cache_clear()


def test_the_command_runs_a_small_fuzz_and_writes_its_table(tmp_path, capsys):
    from benchmarks import fuzz

    code = fuzz.main(["--n", "12", "--classes", "grammar", "bytes", "--functions", "parse", "repair", "--chunk", "3",
                      "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "| parse" in out and "| repair" in out and "invariant failures" in out
    import json

    result = json.loads((tmp_path / "fuzz.json").read_text(encoding="utf-8"))
    assert result["inputs"] == 12 and {r["function"] for r in result["functions"]} == {"parse", "repair"}
    assert all(r["inputs"] == 12 for r in result["functions"])
    assert result["classes"] == {"grammar": 8, "bytes": 4} or sum(result["classes"].values()) == 12


def test_runs_side_by_side_merge_into_one_table(tmp_path, capsys):
    import json

    from benchmarks import fuzz

    for seed in (1, 2):
        assert fuzz.main(["--n", "5", "--seed", str(seed), "--classes", "bytes", "--functions", "parse", "--chunk", "2",
                          "--per-draw", "2", "--no-progress", "--out", str(tmp_path / str(seed))]) == 0
    assert fuzz.main(["--merge", str(tmp_path / "1" / "fuzz.json"), str(tmp_path / "2" / "fuzz.json"), "--out", str(tmp_path)]) == 0
    merged = json.loads((tmp_path / "fuzz.json").read_text(encoding="utf-8"))
    assert merged["inputs"] == 10 and merged["functions"][0]["inputs"] == 10 and merged["meta"]["seeds"] == [1, 2]
    assert "10 inputs" in capsys.readouterr().out
