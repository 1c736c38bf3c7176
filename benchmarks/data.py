"""Where the shared public data lives, and readers for the Sim4IA 2025 Task A files."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (or ``$BLOCKGEN_SHARED_DATA``)."""
    return Path(os.environ.get("BLOCKGEN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def sim4ia_dir() -> Path:
    return shared_data_dir() / "sim4ia"


class DataError(ValueError):
    """A data file that is missing or not in the expected format."""


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"data file not found: {path} (set BLOCKGEN_SHARED_DATA to the shared data folder)")
    return path


@dataclass(frozen=True)
class Session:
    """One Task A session: its number (1..35 in file order), original id and all its queries."""

    number: int
    session_id: str
    queries: tuple[str, ...]

    @property
    def context(self) -> tuple[str, ...]:
        """What a system sees: every query but the last."""
        return self.queries[:-1]

    @property
    def target(self) -> str:
        """The true next query (the session's last query)."""
        return self.queries[-1]


def load_sessions(path: Union[str, Path, None] = None) -> list[Session]:
    """Sessions of ``evaluation_sessions_Task_A.csv``, numbered 1.. in order of first appearance."""
    path = _need(Path(path) if path else sim4ia_dir() / "evaluation_sessions_Task_A.csv")
    order: list[str] = []
    queries: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"session_id", "query"} <= set(reader.fieldnames):
            raise DataError(f"{path} has no session_id/query columns")
        for row in reader:
            sid = row["session_id"]
            if sid not in queries:
                order.append(sid)
                queries[sid] = []
            queries[sid].append(row["query"])
    return [Session(i, sid, tuple(queries[sid])) for i, sid in enumerate(order, 1)]


def load_context(path: Union[str, Path, None] = None) -> dict[int, list[str]]:
    """Context queries per session number from ``predetermined_queries_Task_A_test.csv`` (no header)."""
    path = _need(Path(path) if path else sim4ia_dir() / "predetermined_queries_Task_A_test.csv")
    context: dict[int, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 4 or not row[2].strip().isdigit():
                raise DataError(f"{path}: unexpected row {row[:4]!r}")
            context.setdefault(int(row[2]), []).append(row[3])
    return context


def load_run(path: Union[str, Path]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A Task A1 run file: its ``meta`` and the candidate lists per session number (as str)."""
    path = _need(Path(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a run file is a JSON object")
    meta = data.get("meta", {}) if isinstance(data.get("meta"), dict) else {}
    runs = {str(k): [c if isinstance(c, str) else "" for c in v] for k, v in data.items() if k != "meta" and isinstance(v, list)}
    return meta, runs


def load_published(path: Union[str, Path, None] = None) -> list[dict[str, Any]]:
    """The official Task A1 scores (``evaluation_results_A1.csv``) as rows of floats."""
    path = _need(Path(path) if path else sim4ia_dir() / "evaluation_results_A1.csv")
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append({k: (v if k == "JSON File" else float(v)) for k, v in row.items()})
    return rows


def load_clef_topics(path: Union[str, Path, None] = None) -> list[dict[str, Any]]:
    """CLEF TAR topics (``clef_tar/topics.jsonl``): ``{topic, title, query, source}``."""
    path = _need(Path(path) if path else shared_data_dir() / "clef_tar" / "topics.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
