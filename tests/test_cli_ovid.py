"""``blockgen ovid``: a strategy file in, one block query out; figures over a topics file."""

from __future__ import annotations

import io
import json

from blockgen import is_valid, parse
from blockgen.cli import main
from blockgen.ovid import from_ovid

STRATEGY = """1 exp Malaria/
2 malaria.ti,ab.
3 1 or 2
4 (artesunate or artemether).ti,ab.
5 3 and 4
6 limit 5 to humans
"""


def run(argv, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_a_strategy_file_becomes_the_query_from_ovid_gives(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(STRATEGY)
    code, out, err = run(["ovid", str(path)])
    assert code == 0 and is_valid(out.strip())
    assert parse(out.strip()) == from_ovid(STRATEGY)
    assert "limit" in err  # the dropped limit line is reported


def test_json_output_and_standard_input():
    code, out, _ = run(["ovid", "--json"], stdin=STRATEGY)
    row = json.loads(out)
    assert code == 0 and parse(row["query"]) == from_ovid(STRATEGY) and row["lines"] == 6 and row["dropped"]


def test_bad_input_is_a_message_and_an_exit_code(tmp_path):
    assert run(["ovid", str(tmp_path / "missing.txt")])[0] == 2
    code, _, err = run(["ovid"], stdin="   \n")
    assert code == 1 and err.startswith("blockgen ovid: ") and err.count("\n") == 1
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"topic": "a", "query": "1 x.ti."}\nnot json\n')
    code, _, err = run(["ovid", "--topics", str(bad)])
    assert code == 2 and f"{bad}:2" in err


def test_topics_figures_count_every_strategy(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps({"topic": f"T{i}", "query": STRATEGY}) for i in range(3)) + "\n")
    code, out, _ = run(["ovid", "--topics", str(path)])
    assert code == 0
    assert "converted to valid queries: 3/3" in out and "clean or only limits dropped (date, language, humans): 3/3" in out


def test_invalid_utf8_is_an_error_naming_the_byte_offset(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes(b"exp Malaria/\nmal\xffaria.ti,ab.\n1 or 2\n")
    code, out, err = run(["ovid", str(path)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "byte 16" in err


def test_invalid_utf8_on_standard_input_is_an_error():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "blockgen.cli", "ovid"], input=b"a\xfe", capture_output=True)
    assert proc.returncode == 2 and b"byte 1" in proc.stderr and b"Traceback" not in proc.stderr


def test_a_deep_strategy_never_prints_a_traceback(tmp_path):
    path = tmp_path / "deep.txt"
    path.write_text("(" * 500 + "a" + ")" * 500 + "\n" + "\n".join(f"{i} not x{i}" for i in range(1, 601)))
    code, out, err = run(["ovid", str(path)])
    assert "Traceback" not in err
    assert (code == 0 and out.strip()) or (code == 2 and err.count("\n") == 1)
