"""Table I (markdown) and Figure 2 (PNG) from several ``adsc eval`` result files.

    adsc report runs/full runs/adsc192 runs/fastv192 --baseline runs/full --markdown table.md --plot fig2.png

Avg. rel. % = mean over the benchmarks of score / full-model score * 100, as in the paper;
"drop" = 100 - Avg. rel. (points).
"""

from __future__ import annotations

import json
import os

from .benchmarks import HEADLINES, ORDER

# The paper's Table I (LLaVA-1.5-7B), for --paper: method, tokens, GQA, MME, POPE, SQA, TextVQA, VQAv2.
PAPER_TABLE = [
    ("full", 576, 61.9, 1864, 85.9, 69.5, 58.2, 78.5), ("ToMe", 192, 54.3, 1563, 72.4, 65.2, 52.1, 68.0),
    ("FastV", 192, 52.6, 1605, 64.8, 69.1, 52.5, 67.1), ("PyramidDrop", 192, 57.3, 1797, 82.3, 69.2, 56.5, 75.1),
    ("ADSC", 192, 61.0, 1801, 85.0, 69.5, 56.2, 77.1), ("ToMe", 128, 52.4, 1343, 62.8, 59.6, 49.1, 63.0),
    ("FastV", 128, 49.6, 1490, 53.4, 60.2, 50.5, 61.8), ("PyramidDrop", 128, 57.1, 1761, 82.3, 68.4, 56.6, 72.9),
    ("ADSC", 128, 60.1, 1782, 84.5, 69.9, 55.1, 76.3), ("ToMe", 64, 48.6, 1138, 52.5, 50.0, 45.3, 57.1),
    ("FastV", 64, 46.1, 1256, 38.2, 51.1, 47.8, 55.0), ("PyramidDrop", 64, 47.5, 1561, 55.9, 69.0, 50.6, 69.2),
    ("ADSC", 64, 58.4, 1701, 84.0, 69.8, 53.2, 73.9),
]


def add_arguments(p) -> None:
    p.add_argument("results", nargs="+", help="results.json files or run folders holding one")
    p.add_argument("--baseline", help="the full-model run (file or folder); default: the one run without compression")
    p.add_argument("--markdown", help="write the table here (it is printed either way)")
    p.add_argument("--plot", help="write the score-vs-vision-tokens figure (PNG) here")
    p.add_argument("--paper", action="store_true", help="also print the paper's Table I (LLaVA-1.5-7B) with its Avg. rel.")


def load_run(path: str) -> dict:
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no results file at {path}; run `adsc eval` first")
    try:
        with open(path, encoding="utf-8") as fh:
            run = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rerun `adsc eval` into that folder") from None
    benches = run.get("benchmarks") if isinstance(run, dict) else None
    if not isinstance(benches, dict) or not all(isinstance(r, dict) for r in benches.values()):
        raise ValueError(f"{path} is not an `adsc eval` results file (no benchmarks object)")
    run["_path"] = os.path.abspath(path)
    run["_scores"] = {b: r["headline"] for b, r in benches.items() if isinstance(r.get("headline"), (int, float))}
    return run


def pick_baseline(runs: list[dict], baseline: str | None) -> dict:
    if baseline:
        return load_run(baseline)
    full = [r for r in runs if r.get("compression") is None]
    if len(full) != 1:
        raise ValueError(f"{len(full)} runs without compression among the inputs; name the full-model run with --baseline")
    return full[0]


def relative(scores: dict, base: dict) -> float | None:
    """Mean of score / baseline score over the benchmarks both have (percent)."""
    shared = [b for b in ORDER if b in scores and base.get(b)]
    if not shared:
        return None
    return 100.0 * sum(scores[b] / base[b] for b in shared) / len(shared)


def _fmt(bench: str, value) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if bench == "mme" else f"{value:.1f}"


def _tokens(value) -> str:
    return "–" if value is None else f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def table(rows: list[tuple[str, object, dict]], base: dict, benches: list[str]) -> str:
    """rows: (method, tokens, benchmark -> score). Markdown in the paper's Table I layout."""
    head = ["method", "tok"] + [HEADLINES[b][0] for b in benches] + ["Avg. rel. %", "drop"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, tokens, scores in rows:
        rel = relative({b: scores[b] for b in benches if b in scores}, base)
        cells = [method, _tokens(tokens)] + [_fmt(b, scores.get(b)) for b in benches]
        cells += ["–" if rel is None else f"{rel:.1f}", "–" if rel is None else f"{100.0 - rel:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_rows(runs: list[dict], base_run: dict) -> list[tuple[str, object, dict]]:
    others = [r for r in runs if r["_path"] != base_run["_path"]]
    others.sort(key=lambda r: (-(r.get("tokens") or 0), str(r.get("label"))))
    return [(str(base_run.get("label") or "full"), base_run.get("tokens"), base_run["_scores"])] + \
        [(str(r.get("label") or r.get("method")), r.get("tokens"), r["_scores"]) for r in others]


def plot(rows, base_tokens, base: dict, benches: list[str], path: str) -> None:
    """Figure 2: per benchmark, score against vision tokens, one line per method."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    cols = min(3, len(benches))
    nrows = (len(benches) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    methods = {}
    for method, tokens, scores in rows[1:]:
        methods.setdefault(method, []).append((tokens, scores))
    for ax, bench in zip(axes.flat, benches):
        for method, points in methods.items():
            pts = sorted((t, s[bench]) for t, s in points if t is not None and bench in s)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        if bench in base:
            ax.axhline(base[bench], color="gray", linestyle="--", label=f"{rows[0][0]} ({_tokens(base_tokens)} tok)")
        ax.set_title(HEADLINES[bench][0])
        ax.set_xlabel("vision tokens (average over layers)")
        ax.set_ylabel(HEADLINES[bench][1])
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(benches):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def paper_table() -> str:
    rows = [(m, t, dict(zip(ORDER, vals))) for m, t, *vals in PAPER_TABLE]
    return table(rows, rows[0][2], list(ORDER))


def run(args) -> int:
    runs = [load_run(p) for p in args.results]
    base_run = pick_baseline(runs, args.baseline)
    if base_run["_path"] not in {r["_path"] for r in runs}:
        runs.insert(0, base_run)
    benches = [b for b in ORDER if any(b in r["_scores"] for r in runs)]
    if not benches:
        raise ValueError("no scored benchmark in these result files")
    rows = run_rows(runs, base_run)
    text = table(rows, base_run["_scores"], benches)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")
    if args.plot:
        plot(rows, base_run.get("tokens"), base_run["_scores"], benches, args.plot)
        print(f"figure: {args.plot}")
    if args.paper:
        print("\nThe paper's Table I (LLaVA-1.5-7B), Avg. rel. recomputed from its scores:\n" + paper_table())
    return 0
