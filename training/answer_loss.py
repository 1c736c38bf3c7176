"""The loss on the answer tokens, with the output layer run on those positions only.

A causal LM computes logits for every position; fine-tuning only needs them where a label is
set (the query and EOS; the prompt is masked). With a large vocabulary the output layer is
most of the work: for all-MiniLM-L6-v2 (30,525 tokens, 384 dimensions) it costs as much as the
six transformer layers. Measured on this machine (one thread, a batch of 16 x 100 tokens with
60 answer tokens each, LoRA rank 16, ``build/scratch/prof.py``): 4.8 s per forward + backward
with every position's logits, 2.3 s with the answer positions only.

:class:`AnswerLoss` wraps a (PEFT) causal LM whose body and head it can find (BERT:
``bert`` + ``cls``; Llama and most others: ``model`` + ``lm_head``); for any other model it
falls back to the model's own loss. The loss is the same mean cross-entropy over the labelled
next tokens either way.
"""

from __future__ import annotations

from typing import Any, Optional

from training.examples import IGNORE_INDEX


#: Model types whose logits are exactly ``head(body(...)[0])`` (no scaling or soft-capping).
PLAIN_HEADS = {"bert": ("bert", "cls"), "llama": ("model", "lm_head"), "mistral": ("model", "lm_head"),
               "qwen2": ("model", "lm_head")}


def _parts(model: Any) -> Optional[tuple[Any, Any]]:
    """``(body, head)`` of a causal LM (inside a PEFT wrapper too), or ``None`` when unknown."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = PLAIN_HEADS.get(getattr(getattr(inner, "config", None), "model_type", None))
    if names is None or not all(hasattr(inner, n) for n in names):
        return None
    return getattr(inner, names[0]), getattr(inner, names[1])


class AnswerLoss:
    """Call it like the model (``input_ids``, ``attention_mask``, ``labels``); ``.loss`` of the result."""

    def __init__(self, model: Any, prefix_lm: bool = False):
        self.model = model
        self.parts = _parts(model)
        #: the prompt (the positions before the first label) attends both ways
        self.prefix_lm = prefix_lm

    def __getattr__(self, name: str) -> Any:  # train(), eval(), parameters() ... go to the model
        return getattr(self.model, name)

    def __call__(self, input_ids, attention_mask=None, labels=None, **kwargs):
        import torch
        from types import SimpleNamespace

        if self.prefix_lm and labels is not None and attention_mask is not None:
            from blockgen.minilm import prefix_lm_mask

            labelled = labels != IGNORE_INDEX
            prompt_lengths = torch.where(labelled.any(1), labelled.int().argmax(1), labels.shape[1])
            attention_mask = prefix_lm_mask(attention_mask, prompt_lengths)
        if self.parts is None or labels is None:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        body, head = self.parts
        hidden = body(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        target = labels[:, 1:]
        keep = target != IGNORE_INDEX
        logits = head(hidden[:, :-1][keep]).float()
        loss = torch.nn.functional.cross_entropy(logits, target[keep]) if keep.any() else logits.sum() * 0
        return SimpleNamespace(loss=loss)
