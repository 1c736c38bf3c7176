"""The embedded default model: tokenizer, the --quick build (smoke test) and the shipped files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from blockgen import is_valid
from training.examples import format_prompt
from training.tokenizer import byte_coverage, load_tokenizer, save_tokenizer, train_tokenizer
from training.train_default import read_heldout, train_default

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

ROOT = Path(__file__).resolve().parent.parent

CONCEPTS = {
    "climate change": ['"climate change"', '"global warming"', '"climate crisis"'],
    "misinformation": ["misinformation", '"fake news"', "disinformation"],
    "social media": ['"social media"', "Twitter", "Facebook"],
    "stainless steel": ['"stainless steel"', "17-4PH", '"austenitic steel"'],
    "corrosion": ["corrosion", "pitting", "rust*"],
    "children": ["child*", "kid*", "adolescen*"],
    "behaviour": ["behavio?r", "conduct"],
    "acne": ["acne[tiab]", '"Acne Vulgaris"[Mesh]'],
    "treatment": ["treatment", "therapy", "intervention*"],
}


def synthetic_pairs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    keys = list(CONCEPTS)
    out = []
    for _ in range(n):
        chosen = rng.sample(keys, rng.randint(1, 3))
        query = " AND ".join("(" + " OR ".join(CONCEPTS[k][: rng.randint(1, len(CONCEPTS[k]))]) + ")" for k in chosen)
        out.append({"prompt": format_prompt(" ".join(chosen)), "completion": query})
    return out


def write_data(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", 300, 0), ("valid", 30, 1)):
        with (directory / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for pair in synthetic_pairs(n, seed):
                fh.write(json.dumps(pair) + "\n")
    heldout = {"clef_topics": ["x"], "prompts": [{"prompt": "acne children. Output:", "source": "a", "topic": "t"}]}
    (directory / "heldout.json").write_text(json.dumps(heldout), encoding="utf-8")
    return directory


# ------------------------------------------------------------------ tokenizer
def test_tokenizer_has_every_byte_and_round_trips_any_text(tmp_path):
    texts = [f"{p['prompt']} {p['completion']}" for p in synthetic_pairs(100, 0)]
    tok = train_tokenizer(texts, vocab_size=320, progress=False)
    assert byte_coverage(tok) is None
    assert tok.eos_token_id is not None and tok.pad_token_id is not None and tok.eos_token_id != tok.pad_token_id
    save_tokenizer(tok, tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    for text in ['("climate change" OR 气候变化) AND émoji 🙂', "Alzheimer's\ttab", texts[3]]:
        ids = again(text, add_special_tokens=False).input_ids
        assert ids == tok(text, add_special_tokens=False).input_ids
        assert again.decode(ids) == text


def test_tokenizer_rejects_a_vocabulary_smaller_than_the_bytes():
    with pytest.raises(ValueError, match="at least 258"):
        train_tokenizer(["a b c"], vocab_size=100, progress=False)


# ------------------------------------------------------------------ held-out topics
def test_read_heldout_takes_sources_in_turn_and_strips_the_prompt_suffix(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({
        "sim4ia_sessions": ["7"],
        "prompts": [
            {"prompt": "first clef. Output:", "source": "clef"},
            {"prompt": "second clef. Output:", "source": "clef"},
            {"prompt": "a session query. Output:", "source": "sim4ia"},
            {"prompt": "a session query. Output:", "source": "sim4ia"},
        ],
    }), encoding="utf-8")
    assert read_heldout(path) == ["first clef", "a session query", "second clef"]
    path.write_text(json.dumps(["plain keywords", {"keywords": "more keywords"}]), encoding="utf-8")
    assert read_heldout(path) == ["plain keywords", "more keywords"]


# ------------------------------------------------------------------ the --quick build
@pytest.fixture(scope="module")
def quick_build(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("default")
    data = write_data(root / "data")
    summary = train_default(data, root / "out", root / "work", quick=True, progress=False)
    return root / "out", summary


def test_quick_build_writes_the_shipped_layout(quick_build):
    out, summary = quick_build
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / "base" / name).is_file(), name
    assert sorted(p.name for p in (out / "adapter").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert summary["sizes"]["total"] == sum(f.stat().st_size for d in ("base", "adapter") for f in (out / d).iterdir())
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "acne children" in card and f"{summary['base']['params']:,}" in card
    assert summary["pretrain"]["eval_losses"][-1] < summary["pretrain"]["initial_eval_loss"]
    rows = summary["examples"]
    assert rows and all(len(row["sampled"]) == 3 and all(row["sampled_valid"]) for row in rows)
    assert all(is_valid(q) for row in rows for q in row["sampled"])


def test_quick_build_loads_offline_with_transformers_and_peft(quick_build, monkeypatch):
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = quick_build
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(out / "base")
    model = AutoModelForCausalLM.from_pretrained(out / "base")
    with safe_open(str(out / "base" / "model.safetensors"), "pt") as fh:
        assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float16}  # stored small
    assert model.dtype == torch.float32  # computed in float32
    ids = tok(format_prompt("acne children"), return_tensors="pt").input_ids
    base_logits = model(ids).logits
    with_adapter = PeftModel.from_pretrained(model, out / "adapter").eval()
    assert not torch.allclose(with_adapter(ids).logits, base_logits)


def test_quick_build_generates_valid_queries_with_query_generator(quick_build):
    from blockgen.generate import QueryGenerator

    out, _ = quick_build
    gen = QueryGenerator.from_pretrained(out / "base", adapter=out / "adapter")
    results = gen.generate(["acne children", "social media corrosion"], n=2, max_new_tokens=24, seed=0)
    assert all(c.valid and is_valid(c.text) for cands in results for c in cands)
