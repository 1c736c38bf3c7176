"""training.train_default: the --quick build on a tiny BERT encoder (never the full model in a test)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from blockgen import is_valid
from training.examples import format_prompt
from training.loop import TrainingError
from training.train_default import SIZE_LIMIT, main, parse_overrides, read_heldout, read_weighted, train_default
from tests.tiny_models import save_tiny_bert

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

CONCEPTS = {
    "climate change": ['"climate change"', '"global warming"'],
    "misinformation": ["misinformation", '"fake news"'],
    "social media": ['"social media"', "twitter"],
    "acne": ["acne", '"acne vulgaris"'],
    "treatment": ["treatment", "therapy"],
}


def synthetic_pairs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    keys = list(CONCEPTS)
    out = []
    for i in range(n):
        chosen = rng.sample(keys, rng.randint(1, 3))
        query = " AND ".join("(" + " OR ".join(CONCEPTS[k]) + ")" for k in chosen)
        out.append({"prompt": format_prompt(" ".join(chosen)), "completion": query, "source": ["clef", "concepts"][i % 2]})
    return out


def write_data(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", 60, 0), ("valid", 10, 1)):
        with (directory / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for pair in synthetic_pairs(n, seed):
                fh.write(json.dumps(pair) + "\n")
    heldout = {"clef_topics": ["x"], "prompts": [{"prompt": "acne treatment. Output:", "source": "clef", "topic": "t"}]}
    (directory / "heldout.json").write_text(json.dumps(heldout), encoding="utf-8")
    return directory


def test_read_weighted_repeats_pairs_by_source(tmp_path):
    data = write_data(tmp_path / "data")
    pairs, counts = read_weighted(data / "train.jsonl", {"clef": 3, "concepts": 0})
    assert counts == {"clef": 30} and len(pairs) == 90
    assert all(pairs[3 * i] == pairs[3 * i + 2] for i in range(30))


def test_read_heldout_takes_sources_in_turn_and_strips_the_prompt_suffix(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"prompts": [
        {"prompt": "first clef. Output:", "source": "clef"},
        {"prompt": "second clef. Output:", "source": "clef"},
        {"prompt": "a session query. Output:", "source": "sim4ia"},
        {"prompt": "a session query. Output:", "source": "sim4ia"},
    ]}), encoding="utf-8")
    assert read_heldout(path) == ["first clef", "a session query", "second clef"]


def test_recipe_settings_are_overridden_by_name_only():
    assert parse_overrides(["epochs=2", "weights={\"clef\": 1}", "lr=1e-3"]) == {"epochs": 2, "weights": {"clef": 1}, "lr": 1e-3}
    with pytest.raises(TrainingError, match="KEY=VALUE"):
        parse_overrides(["epoch=2"])


@pytest.fixture(scope="module")
def quick_build(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("default")
    base = save_tiny_bert(root / "tinybert", seed=2)
    summary = train_default(write_data(root / "data"), root / "out", root / "work", quick=True, progress=False, base=base)
    return root / "out", base, summary


def test_quick_build_ships_a_small_adapter_and_a_card(quick_build):
    out, _base, summary = quick_build
    assert sorted(p.name for p in (out / "adapter").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert json.loads((out / "generation_config.json").read_text())["do_sample"] is True
    assert summary["sizes"]["total"] <= SIZE_LIMIT
    assert summary["finetune"]["eval_losses"][-1] < summary["finetune"]["initial_eval_loss"]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "acne treatment" in card and f"{summary['finetune']['trainable_params']:,}" in card
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["trainable_token_indices"] and config["modules_to_save"] == ["transform"]


def test_quick_build_loads_with_its_base_and_writes_valid_queries(quick_build):
    from blockgen.minilm import load_default

    out, base, summary = quick_build
    gen = load_default(model_dir=out, base=base)
    assert gen.sampling_defaults() == (summary["recipe"]["temperature"], summary["recipe"]["top_p"])
    results = gen.generate(["acne treatment", "social media"], n=2, max_new_tokens=16, seed=0)
    assert all(c.valid and is_valid(c.text) for cands in results for c in cands)
    assert summary["examples"] and all(all(row["valid"]) for row in summary["examples"])


def test_bad_recipe_setting_exits_2_with_a_message(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--set", "nope=1"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
