"""The errors of the generation API (plain exceptions with a readable message)."""

from __future__ import annotations


class GenerationError(ValueError):
    """Bad input to generation (empty prompt, budget below the minimum, bad sampling options)."""


class ModelLoadError(ValueError):
    """A model or adapter directory that is missing, incomplete or unusable."""


class AdapterMismatchError(ModelLoadError):
    """A LoRA adapter that does not fit the base model it is loaded onto."""
