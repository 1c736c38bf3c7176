"""Prompts (keywords) that the default model did not see in training.

``training/data/heldout.json`` (written by ``training/prepare_data.py``) lists the held-out
CLEF TAR topic ids and Sim4IA sessions. The prompts are the CLEF topics' titles and the
Sim4IA sessions' context queries (every distinct one). When the file is missing, every
session and topic is used, with a warning that the model may have seen them in training.

The file is read leniently: a JSON object whose keys mention ``clef`` and ``sim4ia`` or
``session`` hold lists of ids (or of objects with an ``id``/``topic``/``session`` field).
Sim4IA ids are matched against the original ``session_id`` column first, then against the
session numbers 1..35 (``"number"`` in the key name means numbers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from benchmarks.data import ROOT, DataError, load_clef_topics, load_context, load_sessions

HELDOUT_FILE = ROOT / "training" / "data" / "heldout.json"


@dataclass(frozen=True)
class Prompt:
    """One prompt: where it comes from, its id there, and the keywords."""

    source: str  # "sim4ia" or "clef_tar"
    id: str
    keywords: str


def _ids(value: Any) -> list[str]:
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            for key in ("id", "topic", "session", "session_id", "number"):
                if key in item:
                    out.append(str(item[key]))
                    break
        else:
            out.append(str(item))
    return out


def read_heldout(path: Union[str, Path]) -> dict[str, Any]:
    """The held-out ids: ``{"clef": [...], "sim4ia": [...], "sim4ia_numbers": bool}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read the held-out list {path}: {err}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with the held-out CLEF topics and Sim4IA sessions")
    clef: list[str] = []
    sim: list[str] = []
    numbers = False
    for key, value in data.items():
        low = key.lower()
        if "clef" in low or "topic" in low:
            clef += _ids(value)
        elif "sim4ia" in low or "session" in low:
            sim += _ids(value)
            numbers = numbers or "number" in low
    if not clef and not sim:
        raise DataError(f"{path}: no CLEF topic or Sim4IA session ids found (keys: {', '.join(data)})")
    return {"clef": clef, "sim4ia": sim, "sim4ia_numbers": numbers}


def _held_sessions(held: dict[str, Any], sessions: list, path: Path) -> list:
    by_id = {s.session_id: s for s in sessions}
    by_number = {str(s.number): s for s in sessions}
    if held["sim4ia"] and not held["sim4ia_numbers"] and all(i in by_id for i in held["sim4ia"]):
        return [by_id[i] for i in held["sim4ia"]]
    missing = [i for i in held["sim4ia"] if i not in by_number]
    if missing:
        raise DataError(f"{path}: unknown Sim4IA session(s) {', '.join(missing[:5])}")
    return [by_number[i] for i in held["sim4ia"]]


def heldout_session_numbers(path: Optional[Union[str, Path]] = None) -> Optional[list[int]]:
    """The numbers (1..35) of the Sim4IA sessions held out from training; ``None`` without the file."""
    path = Path(path) if path else HELDOUT_FILE
    if not path.is_file():
        return None
    return sorted(s.number for s in _held_sessions(read_heldout(path), load_sessions(), path))


def _distinct(queries: Iterable[str]) -> list[str]:
    seen, out = set(), []
    for q in queries:
        key = " ".join(q.split()).lower()
        if key and key not in seen:
            seen.add(key)
            out.append(q.strip())
    return out


def load_prompts(path: Optional[Union[str, Path]] = None) -> tuple[list[Prompt], str]:
    """The held-out prompts, and a note saying where they come from."""
    path = Path(path) if path else HELDOUT_FILE
    sessions = load_sessions()
    context = load_context()
    topics = load_clef_topics()
    if path.is_file():
        held = read_heldout(path)
        chosen = _held_sessions(held, sessions, path)
        topic_ids = set(held["clef"])
        unknown = topic_ids - {t["topic"] for t in topics}
        if unknown:
            raise DataError(f"{path}: unknown CLEF topic(s) {', '.join(sorted(unknown)[:5])}")
        kept_topics = [t for t in topics if t["topic"] in topic_ids]
        note = f"held out from training ({path}): {len(chosen)} Sim4IA sessions, {len(kept_topics)} CLEF TAR topics"
    else:
        chosen, kept_topics = sessions, topics
        note = (
            f"{path} not found: using all {len(sessions)} Sim4IA sessions and {len(topics)} CLEF TAR topics; "
            "the model may have seen some of them in training"
        )
    prompts = []
    for s in chosen:
        for j, q in enumerate(_distinct(context.get(s.number, []))):
            prompts.append(Prompt("sim4ia", f"{s.number}.{j + 1}", q))
    prompts += [Prompt("clef_tar", t["topic"], t["title"]) for t in kept_topics if t.get("title", "").strip()]
    return prompts, note


def interleave(prompts: list[Prompt]) -> list[Prompt]:
    """Alternate the sources (so ``--limit N`` takes from both)."""
    by_source: dict[str, list[Prompt]] = {}
    for p in prompts:
        by_source.setdefault(p.source, []).append(p)
    out: list[Prompt] = []
    lists = list(by_source.values())
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def prompts_from_file(path: Union[str, Path]) -> list[Prompt]:
    """Prompts from a text file, one per line."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"prompt file not found: {p}")
    lines = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Prompt("file", str(i + 1), line) for i, line in enumerate(lines)]


def parse_budgets(text: str) -> list[int]:
    """Token budgets from a comma-separated ``--budgets`` value, sorted and distinct (each >= 1)."""
    try:
        budgets = sorted({int(b) for b in text.split(",") if b.strip()})
    except ValueError:
        raise DataError(f"--budgets takes whole numbers separated by commas, not {text!r}") from None
    if not budgets or budgets[0] < 1:
        raise DataError("--budgets must be at least 1")
    return budgets


def choose_prompts(
    prompts_file: Optional[Union[str, Path]], heldout: Optional[Union[str, Path]], limit: int = 0
) -> tuple[list[Prompt], str]:
    """The prompts a benchmark runs on, and a note saying where they come from.

    From ``prompts_file`` (one per line) if given, else the held-out prompts with the sources
    interleaved (so ``limit`` takes from both); the first ``limit`` of them (0: all).
    """
    if prompts_file:
        prompts, note = prompts_from_file(prompts_file), f"prompts from {prompts_file}"
    else:
        prompts, note = load_prompts(heldout)
        prompts = interleave(prompts)
    return (prompts[:limit] if limit else prompts), note
