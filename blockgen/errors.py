"""The errors of the generation API (plain exceptions with a readable message)."""

from __future__ import annotations


class GenerationError(ValueError):
    """Bad input to generation (empty prompt, budget below the minimum, bad sampling options)."""


class ModelLoadError(ValueError):
    """A model or adapter directory that is missing, incomplete or unusable."""


class AdapterMismatchError(ModelLoadError):
    """A LoRA adapter that does not fit the base model it is loaded onto."""


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of ``err``'s message (its type name when it has none), at most ``limit`` characters:
    what a one-line error built on a library's exception quotes of it."""
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:limit]
