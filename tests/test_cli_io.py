"""The command line's one convention (blockgen.cli_io): strict UTF-8 input, lines split on \\n and
\\r\\n only, every error one line on standard error with exit code 2, never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from blockgen import cli, cli_io
from blockgen.cli import main

#: Every subcommand that reads queries or a strategy, with the arguments to read standard input.
READERS = {
    "validate": ["validate"],
    "repair": ["repair"],
    "format": ["format"],
    "ovid": ["ovid"],
    "translate": ["translate", "--from", "pubmed", "--to", "lucene"],
    "translate --lines": ["translate", "--from", "pubmed", "--to", "lucene", "--lines"],
}
#: The same, and generate's prompt file (read before any model is loaded).
ALL_READERS = {**READERS, "generate": ["generate", "--input", "-"]}


def strict_stdin(data: bytes) -> io.TextIOWrapper:
    """Standard input as under a strict ASCII locale: decoding it as text would raise."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="ascii", errors="strict")


def run(argv, stdin=b""):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, stdin=strict_stdin(stdin))
    return code, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("blockgen") and "Traceback" not in err


# ---------------------------------------------------------------- encoding


@pytest.mark.parametrize("name", list(ALL_READERS))
def test_invalid_utf8_on_stdin_is_one_line_naming_the_byte_and_exit_2(name):
    code, out, err = run(ALL_READERS[name], b"a OR b\n\xff\xfe c\n")
    assert code == 2 and out == ""
    assert one_error_line(err) and "standard input is not UTF-8 text" in err and "at byte 7" in err


@pytest.mark.parametrize("name", list(ALL_READERS))
def test_invalid_utf8_in_a_file_is_one_line_naming_the_file_and_byte_and_exit_2(name, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9\n")
    argv = ALL_READERS[name][:-1] if name == "generate" else ALL_READERS[name]
    code, out, err = run(argv + [str(path)])
    assert code == 2 and out == "" and one_error_line(err) and f"{path} is not UTF-8 text" in err and "byte 3" in err


def test_ovid_never_exits_0_on_invalid_utf8(tmp_path):
    path = tmp_path / "strategy.txt"
    path.write_bytes(b"exp Malaria/\nmal\xffaria.ti,ab.\n1 or 2\n")
    assert run(["ovid", str(path)])[0] == 2
    assert run(["ovid"], path.read_bytes())[0] == 2


@pytest.mark.parametrize("name", list(READERS))
def test_valid_utf8_is_read_whatever_the_locale(name):
    argv = READERS[name] + (["--json"] if name == "validate" else [])  # validate echoes the query in JSON
    code, out, err = run(argv, "café OR naïve\n".encode("utf-8"))
    assert code == 0, err
    assert "café" in out and "naïve" in out


def test_a_byte_order_mark_is_not_part_of_the_first_query():
    code, out, _ = run(["validate"], "\ufeffa OR b\n".encode("utf-8"))
    assert code == 0 and out == "1: OK\n"


def test_a_query_argument_that_is_not_utf8_is_an_error():
    code, out, err = run(["validate", "-q", "caf\udce9"])  # how Python passes undecodable argv bytes
    assert code == 2 and out == "" and one_error_line(err) and "not UTF-8" in err


def test_the_process_reads_and_writes_utf8_under_a_non_utf8_locale():
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONIOENCODING="latin-1", PYTHONUTF8="0")
    proc = subprocess.run([sys.executable, "-m", "blockgen", "format"], input="Ωmega OR жук\n".encode("utf-8"),
                          capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Ωmega OR жук\n".encode("utf-8")
    proc = subprocess.run([sys.executable, "-m", "blockgen", "repair"], input=b"a\n\xff\n", capture_output=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == b"" and proc.stderr.count(b"\n") == 1 and b"byte 2" in proc.stderr


# ---------------------------------------------------------------- lines


def test_lines_split_on_lf_and_crlf_only():
    text = "a\u2028b\r\nc\u0085d\x0be\x0cf\rg\n\nh\u2029i\n"
    assert cli_io.split_lines(text) == ["a\u2028b", "c\u0085d\x0be\x0cf\rg", "", "h\u2029i"]
    assert cli_io.numbered_lines(text) == [(1, "a\u2028b"), (2, "c\u0085d\x0be\x0cf\rg"), (4, "h\u2029i")]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c"])
def test_a_line_separator_inside_a_line_keeps_it_one_query(separator):
    code, out, _ = run(["validate", "--json"], f"a{separator}b\r\nc\n".encode("utf-8"))
    lines = out.splitlines()  # JSON output escapes the separators: splitlines() splits only records
    assert [json.loads(line)["line"] for line in lines] == [1, 2]
    assert json.loads(lines[0])["query"] == f"a{separator}b"
    assert code == 1  # the separator is not a blank of the grammar: line 1 is one (invalid) query


def test_translate_lines_numbers_count_blank_lines():
    code, out, _ = run(["translate", "--from", "pubmed", "--to", "blockgen", "--lines", "--json"], b"a\n\nb\xe2\x80\xa8c\n")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [1, 3]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("command", ["validate", "repair", "format"])
def test_a_200_deep_query_never_prints_a_traceback(command, tmp_path):
    path = tmp_path / "deep.txt"
    path.write_text("(" * 200 + "a" + ")" * 200 + "\n", encoding="utf-8")
    code, out, err = run([command, str(path)])
    assert "Traceback" not in err
    # until the parser is iterative: one line naming the line, exit 2; after: the query
    assert (code == 0 and out.strip()) or (code == 2 and one_error_line(err) and "line 1" in err and out == "")


def test_a_500_deep_strategy_never_prints_a_traceback(tmp_path):
    path = tmp_path / "deep.txt"
    path.write_text("(" * 500 + "a" + ")" * 500 + "\n", encoding="utf-8")
    code, out, err = run(["ovid", str(path)])
    assert "Traceback" not in err and ((code == 0 and out.strip()) or (code == 2 and one_error_line(err)))


def test_an_unexpected_exception_is_one_line_and_exit_2(monkeypatch):
    def boom(text):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(cli, "parse", boom)
    code, out, err = run(["validate", "-q", "a"])
    assert code == 2 and out == "" and one_error_line(err)
    assert err == "blockgen validate: line 1: internal error: RuntimeError: something broke (please report it)\n"


def test_a_recursion_error_anywhere_is_one_line_and_exit_2(monkeypatch):
    def deep(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(cli, "build_parser", deep)
    code, out, err = run(["validate", "-q", "a"])
    assert code == 2 and one_error_line(err) and "nests too deeply" in err


@pytest.mark.parametrize(
    "argv",
    [["validate", "/no/such/file"], ["ovid", "/no/such/file"], ["translate", "--from", "pubmed", "--to", "ovid", "/no/such"],
     ["generate", "--input", "/no/such/file"], ["grammar", "--target", "gbnf", "-o", "/no/such/dir/x"], ["validate", "--bogus"],
     ["format", "DIR"], ["generate", "a", "--batch-size", "0"], ["generate", "a", "--template", "{foo}"]],
)
def test_every_error_is_one_line_on_stderr_with_exit_2(argv, tmp_path):
    argv = [str(tmp_path) if a == "DIR" else a for a in argv]
    code, out, err = run(argv)
    assert code == 2 and out == "" and one_error_line(err)


def test_errors_name_the_subcommand():
    code, _, err = run(["ovid", "/no/such/file"])
    assert err == "blockgen ovid: file not found: /no/such/file\n"


def test_a_message_starting_with_blockgen_still_gets_the_command_prefix():
    err = io.StringIO()
    assert cli_io.report(err, "blockgen needs a fast tokenizer", "blockgen generate") == 2
    assert err.getvalue() == "blockgen generate: blockgen needs a fast tokenizer\n"
    err = io.StringIO()
    cli_io.report(err, "blockgen validate: unrecognized arguments: -x\nusage: blockgen validate", "blockgen")
    assert err.getvalue() == "blockgen validate: unrecognized arguments: -x usage: blockgen validate\n"
