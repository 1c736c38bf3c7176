"""Batch generation on a Ray cluster: Ray Data hands batches of prompts to ``QueryGenerator`` actors.

>>> from blockgen.distributed import generate_on_ray
>>> results = generate_on_ray(prompts, model="llama-3.2-3b", adapter="my-lora", address="auto", n=10, seed=7)

``blockgen generate --input prompts.txt --ray [ADDRESS] --json`` does the same from the
command line and writes the same JSON lines as a local run. Without ``ADDRESS`` a Ray
instance is started on this machine; ``auto``, ``HOST:PORT`` or ``ray://HOST:10001``
join a running cluster (every node needs blockgen, the model directory at the same path,
and ``pip install "blockgen[ray]"``).

The pipeline: ``ray.data.from_items`` (one row per prompt, with its line number) ->
``map_batches(_QueryWorker, ...)`` on a pool of actors, each of which loads the model
once and decodes the batches of prompts sent to it -> rows streamed back to the driver,
put back in input order, with a progress bar over the prompts.

Reproducibility: each prompt is decoded with its own seed, derived from ``seed`` and the
prompt's line number (``numpy.random.SeedSequence([seed, line])``). So for the same
prompts file, seed, model and options, the candidates are the same whatever the number
of workers, the Ray batch size (``prompts_per_task``), the cluster or the order in which
batches finish (on CPU; GPU kernels may not be bit-reproducible). They are not the same
samples as a local ``QueryGenerator.generate`` run with that seed, which draws all
prompts from one random stream.
"""

from __future__ import annotations

import pickle
from typing import Any, Optional, Sequence

from blockgen.generate import DEFAULT_TEMPLATE, GenerationError, ModelLoadError

INSTALL_HINT = 'pip install "blockgen[ray]"'


class RayUnavailable(GenerationError):
    """Ray (with Ray Data) is not installed."""


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(f"Ray is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def prompt_seed(seed: int, line: int) -> int:
    """The seed of the prompt on ``line`` (0-based) in a run seeded with ``seed``."""
    import numpy as np

    return int(np.random.SeedSequence([seed, line]).generate_state(1)[0])


class _QueryWorker:
    """A Ray Data actor: one model, many batches of prompts."""

    def __init__(self, model: Optional[str], adapter: Optional[str], template: str, device: Optional[str], threads: int, options: dict):
        import torch

        from blockgen.generate import QueryGenerator

        torch.set_num_threads(threads)
        if model:
            self.generator = QueryGenerator.from_pretrained(model, adapter=adapter, device=device, template=template)
        else:
            self.generator = QueryGenerator.default(device=device)
            if template != DEFAULT_TEMPLATE:
                self.generator.template = template
        self.seed = options.pop("seed")
        self.options = options

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        lines, results = [], []
        for line, prompt in zip(batch["line"], batch["prompt"]):
            candidates = self.generator.generate([str(prompt)], seed=prompt_seed(self.seed, int(line)), **self.options)[0]
            lines.append(int(line))
            results.append(pickle.dumps(candidates))
        return {"line": np.array(lines, dtype=np.int64), "result": np.array(results, dtype=object)}


def generate_on_ray(
    prompts: Sequence[str],
    *,
    model: Optional[str] = None,
    adapter: Optional[str] = None,
    template: str = DEFAULT_TEMPLATE,
    address: Optional[str] = None,
    workers: Optional[int] = None,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    device: Optional[str] = None,
    prompts_per_task: int = 8,
    n: int = 10,
    constrained: bool = True,
    max_new_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    top_p: Optional[float] = None,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = True,
    rerank: Optional[bool] = None,
    anchor: Optional[bool] = None,
) -> list:
    """Generate ``n`` candidates per prompt on Ray; returns what ``QueryGenerator.generate`` returns.

    One list of ``GeneratedQuery`` per prompt, in input order. ``model``/``adapter``: local
    model directories (default: the embedded model), readable at the same path on every
    node. ``address``: ``None`` or ``"local"`` starts Ray here (unless it already runs in
    this process); else the cluster address for ``ray.init``. ``workers``: actors (one model
    each); default: as many as the cluster's CPUs (GPUs with ``gpus_per_worker``) allow,
    scaled up from one. ``prompts_per_task``: prompts per Ray Data batch sent to an actor.
    The other options are those of :meth:`QueryGenerator.generate`; ``seed`` seeds every
    prompt separately (see the module docstring for what is reproducible).
    Raises :class:`GenerationError` (``RayUnavailable`` without Ray) or ``ModelLoadError``.
    """
    from pathlib import Path

    prompts = list(prompts)
    if not prompts:
        raise GenerationError("no prompts given")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise GenerationError(f"prompt {i} is empty or not text: give the keywords the query is about")
    for name, value in (("prompts_per_task", prompts_per_task), ("n", n), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise GenerationError(f"{name} must be a whole number >= 1, not {value!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise GenerationError(f"workers must be a whole number >= 1, not {workers!r}")
    if adapter and not model:
        raise GenerationError("an adapter needs the base model it was trained on (model=...)")
    for what, path in (("model", model), ("adapter", adapter)):
        if path and not Path(path).expanduser().is_dir():
            raise ModelLoadError(f"{what} directory not found: {path}")

    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address in (None, "local") else address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        return _run(ray, prompts, model, adapter, template, workers, cpus_per_worker, gpus_per_worker, device, prompts_per_task, progress,
                    dict(n=n, constrained=constrained, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size,
                         rerank=rerank, anchor=anchor))
    finally:
        if started:
            ray.shutdown()


def _run(ray, prompts, model, adapter, template, workers, cpus, gpus, device, per_task, progress, options) -> list:
    import logging

    logger, context = logging.getLogger("ray.data"), ray.data.DataContext.get_current()
    saved = logger.level, context.enable_progress_bars
    logger.setLevel(logging.WARNING)  # no execution-plan chatter on stderr
    context.enable_progress_bars = False  # one bar, over prompts, below
    try:
        return _pipeline(ray, prompts, model, adapter, template, workers, cpus, gpus, device, per_task, progress, options)
    finally:
        logger.setLevel(saved[0])
        context.enable_progress_bars = saved[1]


def _pipeline(ray, prompts, model, adapter, template, workers, cpus, gpus, device, per_task, progress, options) -> list:
    from tqdm.auto import tqdm

    if workers is None:
        resources = ray.cluster_resources()
        fits = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1) / cpus
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, int(fits)))
    else:
        pool = ray.data.ActorPoolStrategy(size=workers)
    dataset = ray.data.from_items([{"line": i, "prompt": p} for i, p in enumerate(prompts)])
    dataset = dataset.map_batches(
        _QueryWorker,
        fn_constructor_kwargs=dict(model=model, adapter=adapter, template=template, device=device, threads=max(1, int(cpus)), options=dict(options)),
        batch_size=per_task,
        batch_format="numpy",
        compute=pool,
        num_cpus=cpus,
        num_gpus=gpus or None,
    )
    results: list = [None] * len(prompts)
    with tqdm(total=len(prompts), desc="generating on Ray", unit="prompt", disable=not progress) as bar:
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for line, blob in zip(batch["line"], batch["result"]):
                    results[int(line)] = pickle.loads(blob)
                    bar.update(1)
        except Exception as err:  # a worker failed: Ray wraps the cause with its own traceback
            cause = getattr(err, "cause", None) or err
            message = str(cause).strip().splitlines()
            raise GenerationError(f"the Ray run failed: {type(cause).__name__}: {message[-1] if message else ''}") from None
    return results


def generate_from_args(prompts: Sequence[str], args: Any) -> list:
    """``blockgen generate --ray [ADDRESS]``: :func:`generate_on_ray` with the command's options."""
    from blockgen.cli_generate import generate_options

    return generate_on_ray(
        prompts,
        model=args.model,
        adapter=args.adapter,
        template=args.template,
        address=args.ray,
        device=args.device,
        gpus_per_worker=1 if (args.device or "").startswith("cuda") else 0,
        **generate_options(args, len(prompts)),
    )
