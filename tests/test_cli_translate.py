"""``blockgen translate``: one engine's query in, another engine's out."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from blockgen.cli import main


def run(argv, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_pubmed_to_ovid_from_a_file(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text('("Malaria"[mh] OR malaria[tiab]) AND "rapid test"[tiab:~2]\n')
    code, out, err = run(["translate", "--from", "pubmed", "--to", "ovid", str(path)])
    assert code == 0 and err == ""
    assert out == "1 exp Malaria/ or malaria.ti,ab.\n2 (rapid adj3 test).ti,ab.\n3 1 and 2\n"


def test_query_option_and_notes_on_standard_error():
    code, out, err = run(["translate", "--from", "blockgen", "--to", "pubmed", "-q", '"rapid test*"[tw:~2]'])
    assert code == 0 and out.strip() == "(rapid[tw] AND test*[tw])"
    assert err.startswith("note: writing pubmed: ")


def test_standard_input_holds_a_whole_strategy():
    code, out, _ = run(["translate", "--from", "ovid", "--to", "lucene"], stdin="exp Malaria/\nmalaria.ti,ab.\n1 or 2\n")
    assert code == 0 and out.strip() == "Malaria OR (title:malaria OR abstract:malaria)"


def test_json_lines_and_strict():
    code, out, _ = run(["translate", "--from", "lucene", "--to", "pubmed", "--lines", "--json", "--strict"], stdin='a OR b AND c\n\ntitle:"x y"~2\n')
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == [1, 3]
    assert rows[0]["text"] == "a OR (b AND c)" and rows[0]["exact"]
    assert rows[1]["notes"][0]["stage"] == "read" and rows[1]["notes"][0]["kind"] == "proximity approximated"
    assert code == 0  # the reading note is no loss of the writer
    code, _, _ = run(["translate", "--from", "blockgen", "--to", "pubmed", "--strict", "-q", "behavio?r"])
    assert code == 1


def test_a_query_that_cannot_be_read_names_its_position():
    code, out, err = run(["translate", "--from", "pubmed", "--to", "ovid", "-q", "(a OR b"])
    assert code == 1 and out == "" and "line 1, column 8" in err


def test_usage_errors_exit_2(tmp_path):
    assert run(["translate", "--from", "pubmed", "--to", "ovid", str(tmp_path / "missing")])[0] == 2
    assert run(["translate", "--from", "pubmed", "--to", "ovid", "-q", "a", str(tmp_path / "x")])[0] == 2
    assert run(["translate", "--from", "pubmed", "--to", "nowhere", "-q", "a"])[0] == 2
    assert run(["translate", "--from", "pubmed", "--to", "ovid"], stdin="  \n")[0] == 2
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a \xff b")
    code, _, err = run(["translate", "--from", "pubmed", "--to", "ovid", str(bad)])
    assert code == 2 and "byte 2" in err and err.count("\n") == 1


def test_invalid_utf8_on_standard_input_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "blockgen.cli", "translate", "--from", "pubmed", "--to", "ovid"], input=b"a\xff", capture_output=True)
    assert proc.returncode == 2 and proc.stderr.count(b"\n") == 1 and b"byte 1" in proc.stderr
