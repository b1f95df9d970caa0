"""``adsc`` command line. Each subcommand lives in the package that owns it and provides
``add_arguments(parser)`` (or ``make_parser(prog, description)``) and ``run(args)``; this file
only lists them and imports a command's module when that command runs, so ``adsc --help`` stays
quick while ``adsc <command> --help`` is complete.

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


def _commands() -> dict[str, tuple[str | None, str]]:
    """Every command: the library's, the installed packages', and the optional ones not installed (module None)."""
    installed = _installed_commands()
    listed = dict(COMMANDS)
    for name, module in installed.items():
        listed[name] = (module, OPTIONAL.get(name, (name,))[0])
    for name, (help_text, hint) in OPTIONAL.items():
        listed.setdefault(name, (None, f"{help_text} ({hint})"))
    return listed


def build_parser() -> argparse.ArgumentParser:
    """The top level: command names and their one-line help, without importing any command."""
    parser = argparse.ArgumentParser(prog="adsc", description="Vision-token compression inside multimodal LLMs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in _commands().items():
        sub.add_parser(name, help=help_text, add_help=False)  # its flags are parsed by command_parser(name)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The full parser of one command (imports its module); ``run`` is set as the default ``_run``."""
    module_name, help_text = _commands()[name]
    module = importlib.import_module(module_name)
    prog, description = f"adsc {name}", (module.__doc__ or help_text).strip().splitlines()[0]
    if hasattr(module, "make_parser"):
        parser = module.make_parser(prog=prog, description=description)
    else:
        parser = argparse.ArgumentParser(prog=prog, description=description)
        module.add_arguments(parser)
    parser.set_defaults(_run=module.run, command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    top, rest = build_parser().parse_known_args(argv[:1])
    if _commands()[top.command][0] is None:
        print(f"adsc {top.command}: not installed; {OPTIONAL[top.command][1]}", file=sys.stderr)
        return 2
    args = command_parser(top.command).parse_args(argv[1:] + rest)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as err:  # user errors: one clear line, no traceback
        print(f"adsc {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
