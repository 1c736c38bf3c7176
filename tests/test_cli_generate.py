"""blockgen generate: prompts from arguments or a file, text or JSON output, clear usage errors."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from blockgen import cli_generate, is_valid
from tests.tiny_models import save_tiny_llama, small_tokenizer


def _run(argv, stdin=""):
    parser = argparse.ArgumentParser(prog="blockgen")
    cli_generate.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["generate", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = args.run(args, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("m") / "base", small_tokenizer())


def test_generate_prints_n_valid_queries(model_dir):
    code, out, err = _run(["climate", "change", "-n", "3", "--max-new-tokens", "6", "--model", str(model_dir)])
    assert code == 0, err
    lines = out.splitlines()
    assert 1 <= len(lines) <= 3 and all(is_valid(line) for line in lines)


def test_generate_reads_prompts_from_a_file_and_writes_json(model_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("climate change\n\nstainless steel\n")
    code, out, _ = _run(["--input", str(prompts), "-n", "2", "--max-new-tokens", "5", "--json", "--model", str(model_dir)])
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in records] == ["climate change", "stainless steel"]
    assert all(c["valid"] and is_valid(c["text"]) for r in records for c in r["candidates"])


@pytest.mark.parametrize(
    "argv,match",
    [
        ([], "give the keywords"),
        (["--input", "/no/such/file"], "not found"),
        (["a", "--model", "/no/such/dir"], "not found"),
        (["a", "--adapter", "/x"], "needs --model"),
        (["a", "--max-new-tokens", "0", "--model", "MODEL"], "minimum"),
    ],
)
def test_generate_usage_errors_exit_2_with_a_message(argv, match, model_dir):
    argv = [str(model_dir) if a == "MODEL" else a for a in argv]
    code, out, err = _run(argv)
    assert code == 2 and out == ""
    assert match in err and "Traceback" not in err


def test_the_command_prints_only_queries_with_the_embedded_model():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "blockgen", "generate", "climate change", "-n", "2", "--max-new-tokens", "12", "--seed", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # up to 2: the default model may write the same query for "climate change" in every round
    assert 1 <= len(lines) <= 2 and all(is_valid(line) for line in lines)
    assert proc.stderr == ""  # no weight-loading bars or library warnings


# --------------------------------------------------------------------------- never a traceback
def _garbage_model(tmp_path):
    base = save_tiny_llama(tmp_path / "garbage", small_tokenizer())
    (base / "model.safetensors").write_bytes(b"\x00garbage" * 50)
    return base


@pytest.mark.parametrize(
    "make_argv,match",
    [
        (lambda d, m: ["--input", str(_write(d / "bad.txt", b"climate\n\xff\xfe bad\n"))], "not UTF-8"),
        (lambda d, m: ["--input", str(_write(d / "bin.dat", bytes(range(256))))], "not UTF-8"),
        (lambda d, m: ["--input", str(_write(d / "nul.txt", b"a\x00b\n"))], "binary"),
        (lambda d, m: ["--input", str(d)], "not a file"),
        (lambda d, m: ["a", "--batch-size", "0", "--model", m], "--batch-size"),
        (lambda d, m: ["a", "--batch-size", "-1", "--model", m], "--batch-size"),
        (lambda d, m: ["a", "--template", "{foo}", "--model", m], "template"),
        (lambda d, m: ["a", "--template", "{keywords} {x}", "--model", m], "template"),
        (lambda d, m: ["a", "--template", "{keywords}{", "--model", m], "template"),
        (lambda d, m: ["a", "--device", "bogus", "--model", m], "device"),
        (lambda d, m: ["a", "--model", str(_garbage_model(d))], "could not load"),
        (lambda d, m: ["a", "--temperature", "nan", "--model", m], "temperature"),
        (lambda d, m: ["a", "--top-p", "inf", "--model", m], "top_p"),
        (lambda d, m: ["a", "-n", "0", "--model", m], "-n"),
    ],
)
def test_bad_generate_input_is_one_line_on_stderr_and_exit_2(make_argv, match, tmp_path, model_dir):
    code, out, err = _run(make_argv(tmp_path, str(model_dir)))
    assert code == 2 and out == ""
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_invalid_utf8_on_stdin_is_one_line_on_stderr_and_exit_2(model_dir):
    class BadStdin(io.StringIO):
        def read(self, *args):
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    parser = argparse.ArgumentParser(prog="blockgen")
    cli_generate.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["generate", "--input", "-", "--model", str(model_dir)])
    out, err = io.StringIO(), io.StringIO()
    assert args.run(args, stdout=out, stderr=err, stdin=BadStdin()) == 2
    assert "not UTF-8" in err.getvalue() and out.getvalue() == ""


def test_lines_split_on_newlines_only(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a\u2028b\x0cc\r\nd\n", encoding="utf-8")
    assert cli_generate.read_prompt_lines(str(path), io.StringIO()) == ["a\u2028b\x0cc", "d"]


def test_free_candidates_that_are_not_queries_are_left_out_and_counted(model_dir):
    argv = ["climate", "-n", "8", "--free", "--max-new-tokens", "2", "--seed", "1", "--model", str(model_dir)]
    code, out, err = _run(argv)
    _, json_out, _ = _run(argv + ["--json"])
    cands = json.loads(json_out)["candidates"]
    invalid = [c for c in cands if not c["valid"]]
    assert code == 0 and out.splitlines() == [c["text"] for c in cands if c["valid"]]
    assert all(c["note"] for c in invalid)
    if invalid:
        assert err.strip() == (
            f"blockgen generate: left out {len(invalid)} of {len(cands)} candidates that are not valid queries "
            "(free decoding ran out of --max-new-tokens=2 before writing a term); --json lists them with a note"
        )
    else:
        assert err == ""


@pytest.mark.parametrize("flag, option, expected", [([], "rerank", None), (["--no-rerank"], "rerank", False),
                                                    ([], "anchor", None), (["--no-anchor"], "anchor", False)])
def test_no_rerank_and_no_anchor_turn_the_models_steps_off(model_dir, monkeypatch, flag, option, expected):
    from blockgen.generate import QueryGenerator

    seen = {}
    original = QueryGenerator.generate

    def spy(self, prompts, **options):
        seen.update(options)
        return original(self, prompts, **options)

    monkeypatch.setattr(QueryGenerator, "generate", spy)
    code, out, err = _run(["acne", "-n", "2", "--max-new-tokens", "6", "--model", str(model_dir), *flag])
    assert code == 0, err
    assert seen[option] is expected


def test_fewer_distinct_queries_than_asked_for_are_said_on_stderr(model_dir):
    # greedy decoding writes one distinct query however many are asked for
    code, out, err = _run(["climate", "-n", "3", "--temperature", "0", "--max-new-tokens", "6", "--model", str(model_dir)])
    assert code == 0 and len(out.splitlines()) == 1
    assert "fewer than 3 distinct queries" in err
    code, out, err = _run(["climate", "-n", "1", "--temperature", "0", "--max-new-tokens", "6", "--model", str(model_dir)])
    assert code == 0 and len(out.splitlines()) == 1 and "fewer than" not in err
