"""``blockgen generate``: write Boolean block queries for keywords from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, TextIO

from blockgen.cli_io import InputError, decode, json_line, read_text, report, split_lines
from blockgen.errors import GenerationError, ModelLoadError
from blockgen.generate import DEFAULT_TEMPLATE


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``generate`` subcommand."""
    p = subparsers.add_parser(
        "generate",
        help="write Boolean block queries for keywords",
        description=(
            "Write N candidate Boolean block queries for each keyword prompt, best first. "
            "By default with the embedded model and grammar-constrained decoding."
        ),
    )
    p.add_argument("keywords", nargs="*", help="the keywords of one prompt (several words are joined)")
    p.add_argument("--input", "-i", metavar="FILE", help="one prompt per line ('-' for standard input)")
    p.add_argument("-n", type=int, default=10, help="candidates per prompt (default 10)")
    p.add_argument("--free", action="store_true", help="free decoding, then repair (default: constrained)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="token budget per query (default: the model's; 64 for the embedded model, else 128)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature, 0 for greedy (default: the model's own; embedded model 0.5)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling (default: the model's own; embedded model 0.95)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", metavar="DIR", help="a local Hugging Face causal LM directory (default: embedded model)")
    p.add_argument("--adapter", metavar="DIR", help="a PEFT LoRA adapter directory for --model")
    p.add_argument("--template", default=DEFAULT_TEMPLATE, help="prompt template with {keywords} and no other {field}")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-rerank", action="store_true",
                   help="keep the first n distinct candidates instead of drawing more and reranking them "
                        "(the embedded model reranks by default: faster without)")
    p.add_argument("--no-anchor", action="store_true",
                   help="rerank the model's candidates as written instead of rebuilding each on the prompt's "
                        "own concepts with the model's close synonyms (the embedded model anchors by default)")
    p.add_argument("--json", action="store_true", help="one JSON object per prompt")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="generate on Ray workers (blockgen.distributed): a local Ray instance, or join ADDRESS ('auto', 'host:6379')")
    p.set_defaults(run=run)
    return p


def read_prompt_lines(source: str, stdin: TextIO) -> list[str]:
    """The lines of ``--input``: a file, or ``-`` for standard input.

    Read by :mod:`blockgen.cli_io`'s convention: strict UTF-8 (binary content with NUL bytes
    is refused too), split on ``\n`` and ``\r\n`` only; errors are :class:`InputError`.
    """
    return split_lines(read_text(source, stdin, binary_ok=False))


def _prompts(args, stdin: TextIO) -> list[str]:
    if args.input and args.keywords:
        raise GenerationError("give keywords or --input FILE, not both")
    if args.input:
        prompts = [line.strip() for line in read_prompt_lines(args.input, stdin) if line.strip()]
        if not prompts:
            raise GenerationError(f"no prompts in {args.input}")
        return prompts
    if not args.keywords:
        raise GenerationError('give the keywords, e.g. blockgen generate "climate change misinformation"')
    return [decode(" ".join(args.keywords), "the keywords", binary_ok=False)]


def _check_options(args) -> None:
    """Option errors found before any model is loaded."""
    from blockgen.generate import check_template
    from blockgen.sampling import Sampling

    check_template(args.template)
    if args.batch_size < 1:
        raise GenerationError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.n < 1:
        raise GenerationError(f"-n must be at least 1, not {args.n}")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise GenerationError(f"--max-new-tokens={args.max_new_tokens} is below the minimum of 1: a query needs at least one token")
    if args.adapter and not args.model:
        raise GenerationError("--adapter needs --model (the base model it was trained on)")
    Sampling(temperature=1.0 if args.temperature is None else args.temperature, top_p=1.0 if args.top_p is None else args.top_p)


def generate_options(args: Any, prompts: int) -> dict[str, Any]:
    """The options of ``QueryGenerator.generate`` (and ``generate_on_ray``) that the command's
    arguments set, for ``prompts`` prompts (a progress bar for more than one)."""
    return dict(
        n=args.n,
        constrained=not args.free,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=prompts > 1,
        rerank=False if args.no_rerank else None,
        anchor=False if args.no_anchor else None,
    )


def run(args, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None, stdin: Optional[TextIO] = None) -> int:
    """Run ``blockgen generate``; returns the exit code (0 ok, 2 usage or model error)."""
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    try:
        prompts = _prompts(args, stdin)
        _check_options(args)
        if args.ray is not None:
            from blockgen.distributed import generate_from_args

            results = generate_from_args(prompts, args)
        else:
            from blockgen.generate import QueryGenerator

            if args.model:
                from transformers.utils import logging as hf_logging

                # A command's output is the queries: no weight-loading bars or library notices on stderr.
                # (The embedded model loads without transformers.)
                hf_logging.set_verbosity_error()
                hf_logging.disable_progress_bar()
                gen = QueryGenerator.from_pretrained(args.model, adapter=args.adapter, device=args.device, template=args.template)
            else:
                gen = QueryGenerator.default(device=args.device, template=args.template)
            results = gen.generate(prompts, **generate_options(args, len(prompts)))
    except (GenerationError, ModelLoadError, InputError) as err:
        return report(stderr, err, "blockgen generate")
    invalid = 0
    for prompt, cands in zip(prompts, results):
        if args.json:
            record = {
                "prompt": prompt,
                "candidates": [
                    {
                        "text": c.text,
                        "raw_text": c.raw_text,
                        "valid": c.valid,
                        "repaired": c.repaired,
                        "logprob": round(c.logprob, 4),
                        "tokens": c.tokens,
                        "seconds": round(c.seconds, 4),
                        "cut_off": c.cut_off,
                        "steered": c.steered,
                        "dropped_repeats": c.dropped_repeats,
                        "note": c.note,
                        "anchored": c.anchored,
                    }
                    for c in cands
                ],
            }
            print(json_line(record), file=stdout)
        else:
            if len(prompts) > 1:
                print(f"# {prompt}", file=stdout)
            for c in cands:
                if c.valid:
                    print(c.text, file=stdout)
                else:
                    invalid += 1
    short = sum(1 for c in results if len(c) < args.n)
    if short:
        who = "" if len(prompts) == 1 else f" for {short} of {len(prompts)} prompts"
        print(f"blockgen generate: fewer than {args.n} distinct queries{who}: the candidates came out the same "
              "(a higher --temperature may give more)", file=stderr)
    if invalid:
        total = sum(len(c) for c in results)
        budget = f"--max-new-tokens={args.max_new_tokens}" if args.max_new_tokens is not None else "the token budget"
        why = f" (free decoding ran out of {budget} before writing a term)" if args.free else ""
        print(f"blockgen generate: left out {invalid} of {total} candidates that are not valid queries{why}; --json lists them with a note", file=stderr)
    return 0

