"""LoRA fine-tuning (training/finetune.py, examples.py, loop.py) on a tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

from blockgen import is_valid
from tests.test_grammar import query_strategy
from tests.tiny_models import save_tiny_llama, small_tokenizer
from training.examples import (
    IGNORE_INDEX,
    SEPARATOR,
    DataError,
    encode_pair,
    format_example,
    format_prompt,
    read_pairs,
    shorter_queries,
)
from training.finetune import FinetuneConfig, FinetuneError, finetune, main, run_finetune
from training.loop import TrainingError, collate, epoch_batches

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

PAIRS = [
    ("climate change misinformation", '("climate change" OR "global warming") AND (misinformation OR "fake news")'),
    ("stainless steel passivation", '("stainless steel" OR 17-4PH) AND (passivation OR corrosion)'),
    ("acne treatment", '(acne[tiab] OR "Acne Vulgaris"[Mesh]) AND (treatment OR therapy)'),
    ("child behaviour", "(child* OR kid*) AND (behavio?r OR conduct) NOT adult*"),
    ("social media", '"social media" OR Twitter'),
    ("alzheimer", "Alzheimer's OR dementia"),
]


def write_jsonl(path: Path, pairs) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for keywords, query in pairs:
            fh.write(json.dumps({"prompt": format_prompt(keywords), "completion": query, "source": "test"}) + "\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("finetune")
    base = save_tiny_llama(root / "base", small_tokenizer())
    return {
        "root": root,
        "base": base,
        "train": write_jsonl(root / "train.jsonl", PAIRS * 2),
        "valid": write_jsonl(root / "valid.jsonl", PAIRS[:2]),
    }


def config(files: dict, out: Path, **kw) -> FinetuneConfig:
    settings_ = dict(base=files["base"], train=files["train"], valid=files["valid"], out=out, rank=4, alpha=8,
                     epochs=2, lr=1e-2, batch_size=4, max_length=96, seed=0, progress=False)
    settings_.update(kw)
    return FinetuneConfig(**settings_)


def batch_loss(model, tokenizer) -> float:
    examples = [encode_pair(tokenizer, format_prompt(k), q)[0] for k, q in PAIRS]
    batch = collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        return float(model(**batch).loss)


def load_with_adapter(base: Path, adapter: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    return PeftModel.from_pretrained(model, adapter).eval()


# ------------------------------------------------------------------ the prompt/completion contract
def test_format_example_is_prompt_separator_completion():
    assert SEPARATOR == " "
    assert format_prompt(" acne treatment ") == "acne treatment. Output:"
    assert format_example("acne. Output:", "acne OR pimple*") == "acne. Output: acne OR pimple*"


def test_encoded_pair_learns_only_the_completion_and_eos():
    tok = small_tokenizer()
    prompt, query = format_prompt("acne treatment"), "(acne OR pimple*) AND therapy"
    example, status = encode_pair(tok, prompt, query)
    prompt_ids = tok(prompt).input_ids  # exactly how QueryGenerator encodes the prompt
    assert status == "ok"
    assert example.input_ids[: len(prompt_ids)] == prompt_ids
    assert example.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    answer = example.labels[len(prompt_ids):]
    assert answer == example.input_ids[len(prompt_ids):]
    assert answer[-1] == tok.eos_token_id
    assert tok.decode(answer[:-1]) == SEPARATOR + query


@settings(max_examples=40, deadline=None)
@given(query=query_strategy())
def test_shorter_queries_always_parse_and_shrink(query):
    previous = None
    for text in shorter_queries(query):
        assert is_valid(text), text
        if previous is not None:
            assert len(text) < len(previous)
        previous = text


def test_overlong_completion_is_cut_at_a_block_boundary_or_skipped():
    tok = small_tokenizer()
    prompt = format_prompt("climate")
    query = " AND ".join(f"(term{i} OR other{i} OR third{i})" for i in range(8))
    full, _ = encode_pair(tok, prompt, query)
    cut, status = encode_pair(tok, prompt, query, max_length=len(full) // 2)
    assert status == "truncated"
    assert len(cut) <= len(full) // 2
    n_prompt = len(tok(prompt).input_ids)
    text = tok.decode(cut.input_ids[n_prompt:-1])
    assert text.startswith(SEPARATOR) and is_valid(text)
    assert query.startswith(text.strip()[:10])
    skipped, status = encode_pair(tok, prompt, query, max_length=n_prompt + 1)
    assert skipped is None and status == "skipped"


def test_epoch_batches_cover_every_example_once_and_are_reproducible():
    lengths = [5, 9, 3, 7, 7, 1, 4, 8, 2, 6, 10]
    a = epoch_batches(lengths, 3, seed=0, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(len(lengths)))
    assert a == epoch_batches(lengths, 3, seed=0, epoch=1)
    assert a != epoch_batches(lengths, 3, seed=0, epoch=2)


# ------------------------------------------------------------------ training
def test_lora_steps_reduce_training_loss_and_adapter_loads(files, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(files["base"], local_files_only=True)
    before = batch_loss(AutoModelForCausalLM.from_pretrained(files["base"]).eval(), tok)
    result = run_finetune(config(files, tmp_path / "out", epochs=3))
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    after = batch_loss(load_with_adapter(files["base"], tmp_path / "out"), tok)
    assert after < before - 0.05, (before, after)
    assert result.global_step == 3 * 3  # 12 pairs, batch 4
    assert result.trainable_params > 0 and result.trainable_params < result.total_params
    log = json.loads(result.log_path.read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3]
    assert all(e["eval_loss"] is not None for e in log["epochs"]) and log["finished"]


def test_adapter_loads_with_query_generator(files, tmp_path):
    from blockgen.generate import QueryGenerator

    run_finetune(config(files, tmp_path / "out", epochs=1))
    gen = QueryGenerator.from_pretrained(files["base"], adapter=tmp_path / "out")
    [[cand]] = gen.generate(["acne treatment"], n=1, temperature=0.0, max_new_tokens=12, seed=0)
    assert cand.valid and is_valid(cand.text)


def test_resume_continues_the_step_count(files, tmp_path):
    out = tmp_path / "out"
    first = run_finetune(config(files, out, epochs=1))
    second = run_finetune(config(files, out, epochs=2, resume=True))
    assert first.global_step == 3
    assert second.global_step == 2 * first.global_step
    assert [h["epoch"] for h in json.loads(second.log_path.read_text())["epochs"]] == [1, 2]
    assert second.initial_eval_loss == first.initial_eval_loss


def test_interrupted_run_resumes_to_the_same_weights(files, tmp_path):
    from safetensors.torch import load_file

    whole = run_finetune(config(files, tmp_path / "whole"))
    part = run_finetune(config(files, tmp_path / "part", max_steps=4))
    assert part.stopped_early and part.global_step == 4
    assert not (tmp_path / "part" / "adapter_model.safetensors").exists()
    rest = run_finetune(config(files, tmp_path / "part", resume=True))
    assert rest.global_step == whole.global_step
    a = load_file(str(tmp_path / "whole" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "part" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_resume_without_checkpoint_is_an_error(files, tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint"):
        run_finetune(config(files, tmp_path / "empty", resume=True))


# ------------------------------------------------------------------ bad input
def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: file not found"):
        read_pairs(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"prompt": "a. Output:", "completion": "a"}', '{"prompt": "b. Output:", "completion": '], r":2: malformed JSON"),
        (['{"prompt": "a. Output:", "completion": "a"}', "", '{"prompt": "b. Output:"}'], r":3: missing 'completion'"),
        (['{"completion": "a"}'], r":1: missing 'prompt'"),
        (['{"prompt": "a. Output:", "completion": "  "}'], r":1: 'completion' must be a non-empty string"),
        (['["a", "b"]'], r":1: expected a JSON object"),
        (['{"prompt": "a. Output:", "completion": "(a OR"}'], r":1: the completion is not a valid query"),
        (["", "   "], r": no training pairs"),
    ],
)
def test_bad_lines_are_reported_with_file_and_line(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl" + message):
        read_pairs(path)


def test_cli_prints_data_errors_without_traceback(files, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a. Output:", "completion": "a"}\nnot json\n', encoding="utf-8")
    code = main(["--base", str(files["base"]), "--train", str(bad), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.jsonl:2: malformed JSON" in err and "Traceback" not in err


def test_cli_reports_a_missing_base_model(files, tmp_path, capsys):
    code = main(["--base", str(tmp_path / "nobase"), "--train", str(files["train"]), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "nobase" in capsys.readouterr().err


def test_unknown_target_modules_are_an_error(files, tmp_path):
    with pytest.raises(FinetuneError, match="target modules"):
        run_finetune(config(files, tmp_path / "o", target_modules=("no_such_proj",)))


def test_cli_trains_and_writes_the_adapter(files, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["--base", str(files["base"]), "--train", str(files["train"]), "--valid", str(files["valid"]),
                 "--out", str(out), "--epochs", "1", "--batch-size", "6", "--rank", "2", "--quiet"])
    assert code == 0
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2
    assert "eval loss per epoch" in capsys.readouterr().out


def test_llama3_tokenizer_bf16_and_all_projections(tmp_path):
    """The path of the Llama 3.2 3B recipe: the real 128k vocabulary, pad = EOS, bf16 base, MLP modules too."""
    from safetensors.torch import load_file

    from tests.tiny_models import llama3_tokenizer

    tok = llama3_tokenizer()
    base = save_tiny_llama(tmp_path / "base", tok)
    prompt = format_prompt("acne")
    example, _ = encode_pair(tok, prompt, "acne OR pimple*")
    prompt_ids = tok(prompt).input_ids  # the prompt is encoded as QueryGenerator encodes it
    assert example.input_ids[: len(prompt_ids)] == prompt_ids
    assert example.labels[-1] == tok.eos_token_id == tok.pad_token_id  # the real EOS is learnt, padding is not
    train = write_jsonl(tmp_path / "train.jsonl", PAIRS)
    modules = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    result = run_finetune(FinetuneConfig(base=base, train=train, out=tmp_path / "out", rank=2, alpha=4, epochs=1,
                                     batch_size=3, target_modules=modules, dtype="bfloat16", progress=False))
    assert result.global_step == 2
    weights = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert {w.dtype for w in weights.values()} == {torch.float32}  # LoRA weights stay float32
    assert {k.split(".lora_")[0].rsplit(".", 1)[1] for k in weights} == set(modules)


def test_finetune_function_takes_paths_and_returns_a_summary_dict(files, tmp_path):
    out = tmp_path / "fn"
    summary = finetune(files["base"], files["train"], files["valid"], out, rank=2, alpha=4, epochs=1,
                       batch_size=4, max_length=96, progress=False)
    assert summary["global_step"] == 3 and summary["epochs_done"] == 1
    assert len(summary["eval_losses"]) == 1 and summary["eval_losses"][0] is not None
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2


def test_finetune_function_rejects_unknown_options(files, tmp_path):
    with pytest.raises(FinetuneError, match="no_such_option"):
        finetune(files["base"], files["train"], None, tmp_path / "x", no_such_option=1)


# ------------------------------------------------------------------ a BERT encoder base (the default model's kind)
def test_answer_loss_equals_the_models_own_loss():
    from training.answer_loss import AnswerLoss
    from tests.tiny_models import tiny_llama

    tok = small_tokenizer()
    model = tiny_llama(tok, seed=3)
    examples = [encode_pair(tok, format_prompt(k), q)[0] for k, q in PAIRS]
    batch = collate(examples, tok.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(AnswerLoss(model)(**batch).loss, model(**batch).loss, atol=1e-5)


def test_a_bert_encoder_base_trains_operator_embeddings_and_the_head_next_to_the_lora(files, tmp_path):
    from safetensors.torch import load_file

    from blockgen import minilm, wordpiece
    from tests.tiny_models import save_tiny_bert

    base = save_tiny_bert(tmp_path / "tinybert", seed=4)
    out = tmp_path / "adapter"
    result = run_finetune(config(files, out, base=base, epochs=3))
    assert result.eval_losses[-1] < result.initial_eval_loss
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert any("trainable_tokens_delta" in k for k in weights) and any("transform.dense" in k for k in weights)
    assert not any("word_embeddings.weight" in k for k in weights)  # never the whole embedding matrix
    tok, model = minilm.load_decoder(base)
    and_id = tok.convert_tokens_to_ids("AND")
    before = model.get_input_embeddings().weight[and_id].clone()
    merged = minilm.apply_adapter(model, out)
    assert not torch.equal(merged.get_input_embeddings().weight[and_id], before)
    example, status = encode_pair(tok, format_prompt("covid"), "covid-19 OR alzheimer's")
    assert status == "ok" and wordpiece.decode(tok, example.labels[-5:-1]).endswith("alzheimer's")
