"""blockgen validate | repair | format: files, stdin or -q; text or JSON; exit codes 0 / 1 / 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from blockgen import is_valid, parse
from blockgen.cli import SUBCOMMANDS, build_parser, main

BROKEN = '(a OR "b) AND'


@pytest.fixture
def queries(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(f"(a OR b) AND c\n\n{BROKEN}\nx NOT y\n", encoding="utf-8")
    return path


@pytest.fixture
def stdin(monkeypatch):
    def feed(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))

    return feed


def test_validate_reports_each_line_and_exits_1_on_invalid(queries, capsys):
    code = main(["validate", str(queries)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0] == "1: OK" and lines[-1] == "4: OK"
    assert lines[1].startswith("3: invalid query at line 1, column 7")
    assert lines[3] == "      ^"  # the caret under the error


def test_validate_quiet_prints_only_invalid_lines(queries, capsys):
    assert main(["validate", "--quiet", str(queries)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("3: invalid query") and "OK" not in out


def test_validate_json_has_position_and_expected_tokens(queries, capsys):
    main(["validate", str(queries), "--json"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in records] == [1, 3, 4]
    assert [r["valid"] for r in records] == [True, False, True]
    assert records[0]["error"] is None
    error = records[1]["error"]
    assert (error["line"], error["column"]) == (1, 7) and "a word" in error["expected"]
    assert error["message"].startswith("invalid query at line 1, column 7")


def test_validate_all_valid_exits_0_from_stdin_dash_and_query(stdin, capsys):
    stdin("a OR b\n\nc\n")
    assert main(["validate"]) == 0
    stdin("a OR b\n")
    assert main(["validate", "-"]) == 0
    assert main(["validate", "-q", "a OR b"]) == 0
    assert capsys.readouterr().out.splitlines() == ["1: OK", "3: OK", "1: OK", "1: OK"]


def test_repair_prints_valid_queries_and_exits_0(queries, capsys):
    assert main(["repair", str(queries)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(is_valid(line) for line in lines)
    assert lines[1] == 'a OR "b"'


def test_repair_json_has_the_edits(queries, capsys):
    main(["repair", str(queries), "--json"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in records] == [1, 3, 4]
    assert [r["repaired"] for r in records] == [False, True, False]
    assert records[1]["input"] == BROKEN and parse(records[1]["output"]) == parse('a OR "b"')
    assert {"closed quote", "dropped dangling operator"} <= {e["kind"] for e in records[1]["edits"]}
    assert {"kind", "position", "detail", "removed"} == set(records[1]["edits"][0])
    assert records[0]["edits"] == [] and records[0]["error"] is None


def test_repair_verbose_lists_edits_and_style_applies(capsys):
    assert main(["repair", "-v", "--style", "compact", "-q", "(a or b) and (c)."]) == 0
    out, err = capsys.readouterr()
    assert out == "a OR b AND c\n"
    assert "line 1: normalised operator at 3: or -> OR" in err and "dropped characters" in err


def test_repair_cut_off_drops_the_last_word(capsys):
    main(["repair", "--cut-off", "-q", "a OR b AND clim"])
    assert capsys.readouterr().out == "a OR b\n"


def test_repair_exits_1_when_a_line_has_no_term(stdin, capsys):
    stdin("a OR\n...\n")
    code = main(["repair"])
    out, err = capsys.readouterr()
    assert code == 1 and out.splitlines() == ["a"]
    assert "line 2: nothing usable" in err
    stdin("...\n")
    main(["repair", "--json"])
    record = json.loads(capsys.readouterr().out)
    assert record["output"] is None and "nothing usable" in record["error"]


def test_format_styles(capsys):
    assert main(["format", "-q", "(a OR b) AND c", "--style", "compact"]) == 0
    assert capsys.readouterr().out == "a OR b AND c\n"
    assert main(["format", "-q", "a OR b AND c", "--style", "pretty"]) == 0
    assert capsys.readouterr().out == "(\n  a\n  OR b\n)\nAND c\n"


def test_format_invalid_lines_go_to_stderr_and_exit_1(queries, capsys):
    code = main(["format", str(queries)])
    out, err = capsys.readouterr()
    assert code == 1 and "line 3" in err and "column 7" in err
    assert out.splitlines() == ["(a OR b) AND c", "x NOT y"]


@pytest.mark.parametrize(
    "argv,match",
    [
        (["validate", "/no/such/file"], "file not found: /no/such/file"),
        (["validate", "DIR"], "not a file"),
        (["repair", "LATIN1"], "is not UTF-8 text"),
        (["bogus"], "invalid choice"),
        (["format", "-q", "a", "--style", "fancy"], "invalid choice"),
        (["validate", "x.txt", "-q", "a"], "not both"),
        (["validate", "--no-such-option"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2_with_a_message_and_no_traceback(argv, match, tmp_path, capsys):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    argv = [str(tmp_path) if a == "DIR" else str(latin1) if a == "LATIN1" else a for a in argv]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and match in err and "Traceback" not in err and out == ""


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in ("validate", "repair", "format", "generate"))


def test_help_exits_0(capsys):
    assert main(["validate", "--help"]) == 0
    assert "FILE" in capsys.readouterr().out


def test_subcommand_modules_are_registered():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert set(SUBCOMMANDS) <= set(commands) and {"validate", "repair", "format"} <= set(commands)


def test_an_unimportable_subcommand_says_why_instead_of_breaking_the_others(monkeypatch, capsys):
    monkeypatch.setitem(SUBCOMMANDS, "bench", "no_such_module_for_blockgen")
    assert main(["validate", "-q", "a"]) == 0
    assert main(["bench", "--anything"]) == 2
    assert "blockgen bench is unavailable" in capsys.readouterr().err


def test_python_dash_m_blockgen_runs_the_cli(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "blockgen", "validate", "-q", "a AND"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and proc.stdout.startswith("1: invalid query")
