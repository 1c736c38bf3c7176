"""Batch generation on a local Ray cluster that the tests start and stop (2 CPUs, a small object store).

The workers import blockgen from this checkout (``PYTHONPATH`` in the runtime environment)
and load a tiny random-weight model, so the texts are junk; what is checked is the
pipeline: order, the JSON schema of a local run, and reproducibility across workers and
batch sizes.
"""

from __future__ import annotations

import builtins
import io
import json
from pathlib import Path

import pytest

from blockgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["climate change misinformation", "stainless steel corrosion", "acne vulgaris"]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    pytest.importorskip("blockgen.generate")
    from tests.tiny_models import save_tiny_llama, small_tokenizer

    return save_tiny_llama(tmp_path_factory.mktemp("tiny"), small_tokenizer())


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(
        num_cpus=2,
        object_store_memory=80 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    return path


def test_ray_run_writes_the_local_json_schema_and_decodes_each_prompt_with_its_own_seed(ray_cluster, tiny_model, prompts_file):
    from blockgen.distributed import prompt_seed
    from blockgen.generate import QueryGenerator

    argv = ["generate", "--input", str(prompts_file), "--model", str(tiny_model), "-n", "2", "--max-new-tokens", "8", "--seed", "3", "--json"]
    code, out, err = run_cli(*argv, "--ray")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in records] == PROMPTS  # input order, whatever order the batches finished in
    assert all(c["valid"] for r in records for c in r["candidates"])  # constrained decoding: every candidate parses

    # Each prompt is decoded alone with the seed of its line: the same candidates as this
    # local decode, so neither the number of workers nor the Ray batch size can change them.
    local = QueryGenerator.from_pretrained(tiny_model)
    expected = [[c.text for c in local.generate([p], n=2, max_new_tokens=8, seed=prompt_seed(3, i))[0]] for i, p in enumerate(PROMPTS)]
    assert [[c["text"] for c in r["candidates"]] for r in records] == expected

    # the same JSON lines as a local run: same keys
    code, local_out, err = run_cli(*argv)
    assert code == 0, err
    local_records = [json.loads(line) for line in local_out.splitlines()]
    assert [sorted(r) for r in records] == [sorted(r) for r in local_records]
    assert {k for r in records for c in r["candidates"] for k in c} == {k for r in local_records for c in r["candidates"] for k in c}


def test_a_different_seed_changes_the_candidates_of_a_prompt():
    from blockgen.distributed import prompt_seed

    assert prompt_seed(3, 0) == prompt_seed(3, 0)
    assert len({prompt_seed(s, line) for s in range(3) for line in range(3)}) == 9


def test_ray_option_without_ray_installed_says_how_to_install_it(monkeypatch, prompts_file, tiny_model):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code, out, err = run_cli("generate", "--input", str(prompts_file), "--model", str(tiny_model), "--ray")
    assert code == 2 and out == ""
    assert 'pip install "blockgen[ray]"' in err and "Traceback" not in err


def test_bad_options_are_refused_before_ray_starts(tiny_model):
    from blockgen.distributed import generate_on_ray
    from blockgen.generate import GenerationError, ModelLoadError

    with pytest.raises(GenerationError, match="prompt 1 is empty"):
        generate_on_ray(["a", " "], model=str(tiny_model))
    with pytest.raises(GenerationError, match="workers"):
        generate_on_ray(["a"], model=str(tiny_model), workers=0)
    with pytest.raises(ModelLoadError, match="model directory not found"):
        generate_on_ray(["a"], model=str(tiny_model / "missing"))
