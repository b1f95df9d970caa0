"""``adsc`` command line. Each subcommand lives in the package that owns it and provides
``add_arguments(parser)`` and ``run(args)``; this file only lists them.

Packages beside the library add commands through the ``adsc.commands`` entry point group
(name = module): the testbed registers ``experiment`` there, so the library never imports it."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "demo": ("adsc.demo", "compress a tiny local model, generate, print per-layer tokens and KV cache"),
    "schedule": ("adsc.schedule_cli", "per-layer vision-token counts for pruning layers and a budget or ratio"),
    "profile": ("adsc.profiling.cli", "analytical FLOPs and KV-cache bytes; --reproduce-table4"),
    "bench": ("adsc.profiling.bench", "wall-clock benchmark: full vs compressed vs baselines"),
    "train": ("adsc.training.cli", "LoRA / full fine-tuning with the (reverse) curriculum"),
    "eval": ("adsc.evaluation.cli", "the six benchmarks under the LLaVA-1.5 protocol"),
    "report": ("adsc.evaluation.report", "Table I layout and Figure 2 plot from result files"),
    "serve": ("adsc.serving.vllm.cli", "serve a compressed model on vLLM's OpenAI-compatible server"),
}
ENTRY_POINT_GROUP = "adsc.commands"
# Commands that packages outside the library provide, listed so that `adsc <name>` says what to
# install instead of argparse's "invalid choice" when the package is missing.
OPTIONAL = {
    "experiment": ("the synthetic testbed experiment", "install the testbed: pip install -e ./testbed"),
}


def _installed_commands() -> dict[str, str]:
    """{name: module} of the commands installed packages add through ENTRY_POINT_GROUP."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adsc", description="Vision-token compression inside multimodal LLMs")
    sub = parser.add_subparsers(dest="command", required=True)
    installed = _installed_commands()
    listed = {**COMMANDS, **{name: (module, OPTIONAL.get(name, (None,))[0]) for name, module in installed.items()}}
    for name, (module_name, help_text) in listed.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or help_text or name).strip().splitlines()[0]
        cmd = sub.add_parser(name, help=help_text or doc, description=doc)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    for name, (help_text, hint) in OPTIONAL.items():
        if name not in installed:  # listed in --help; main() answers it with the hint
            sub.add_parser(name, help=f"{help_text} ({hint})")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in OPTIONAL and argv[0] not in _installed_commands():
        print(f"adsc {argv[0]}: not installed; {OPTIONAL[argv[0]][1]}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as err:  # user errors: one clear line, no traceback
        print(f"adsc {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
