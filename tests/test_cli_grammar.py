"""``blockgen grammar --target T``: the export on standard output or in a file, clear errors."""

from __future__ import annotations

import io

from blockgen import export
from blockgen.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


def test_each_target_prints_the_export():
    for target in ("vllm", "llama.cpp", "gbnf"):
        code, out, err = run("grammar", "--target", target)
        assert (code, err) == (0, "")
        assert out == export.grammar(target)


def test_output_file_gets_the_export_and_stdout_stays_empty(tmp_path):
    path = tmp_path / "g.gbnf"
    code, out, err = run("grammar", "-t", "gbnf", "--output", str(path))
    assert (code, out, err) == (0, "", "")
    assert path.read_text(encoding="utf-8") == export.grammar("gbnf")


def test_bad_target_missing_target_and_unwritable_file_exit_2_without_traceback(tmp_path):
    code, _, err = run("grammar", "--target", "ollama")
    assert code == 2 and "invalid choice: 'ollama'" in err and "Traceback" not in err
    code, _, err = run("grammar")
    assert code == 2 and "--target" in err
    code, _, err = run("grammar", "-t", "vllm", "-o", str(tmp_path / "missing" / "g.lark"))
    assert code == 2 and err.startswith("blockgen grammar: cannot write") and "Traceback" not in err
