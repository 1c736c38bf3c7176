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
