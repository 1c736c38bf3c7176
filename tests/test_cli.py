"""blockgen validate | repair | format: files or -q, JSON, exit codes 0 / 1 / 2."""

from __future__ import annotations

import io
import json

import pytest

from blockgen import is_valid
from blockgen.cli import main


def run(argv, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def queries(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text('(a OR b) AND c\n\n(a OR "b) AND\nx NOT y\n', encoding="utf-8")
    return path


def test_validate_reports_each_line_and_exits_1_on_invalid(queries):
    code, out, _ = run(["validate", str(queries)])
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == "1: OK" and lines[-1] == "4: OK"
    assert lines[1].startswith("3: invalid query at line 1, column 7")


def test_validate_json_has_position_and_expected_tokens(queries):
    code, out, _ = run(["validate", str(queries), "--json"])
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [1, 3, 4]
    assert [r["valid"] for r in records] == [True, False, True]
    assert records[1]["error"]["column"] == 7 and "a word" in records[1]["error"]["expected"]


def test_validate_all_valid_exits_0_and_reads_stdin():
    assert run(["validate"], stdin="a OR b\nc\n")[0] == 0
    assert run(["validate", "-q", "a OR b"])[0] == 0


def test_repair_prints_valid_queries_and_json_edits(queries):
    code, out, _ = run(["repair", str(queries)])
    assert code == 0
    assert all(is_valid(line) for line in out.splitlines()) and len(out.splitlines()) == 3
    code, out, _ = run(["repair", str(queries), "--json"])
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["repaired"] for r in records] == [False, True, False]
    assert {"closed quote", "dropped dangling operator"} <= {e["kind"] for e in records[1]["edits"]}


def test_repair_exits_1_when_a_line_has_no_term():
    code, out, err = run(["repair"], stdin="a OR\n...\n")
    assert code == 1 and out.splitlines() == ["a"] and "line 2" in err


def test_format_styles_and_invalid_lines(queries):
    code, out, _ = run(["format", "-q", "a OR b AND c", "--style", "compact"])
    assert (code, out) == (0, "a OR b AND c\n")
    code, out, err = run(["format", str(queries)])
    assert code == 1 and "line 3" in err and out.splitlines() == ["(a OR b) AND c", "x NOT y"]


@pytest.mark.parametrize(
    "argv,match",
    [
        (["validate", "/no/such/file"], "file not found"),
        (["bogus"], "invalid choice"),
        (["format", "-q", "a", "--style", "fancy"], "invalid choice"),
        (["validate", "x.txt", "-q", "a"], "not both"),
    ],
)
def test_usage_errors_exit_2_without_traceback(argv, match):
    code, out, err = run(argv)
    assert code == 2 and match in err and "Traceback" not in err


def test_no_command_prints_help_and_exits_2():
    code, out, _ = run([])
    assert code == 2 and "validate" in out
