"""The testbed report: Table I-IV analogues, the Figure 2 plot, one JSON, read at a glance."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path

from adsc.config import CompressionConfig
from adsc.evaluation.benchmarks import ORDER
from adsc.evaluation.report import plot, relative, table
from adsc.profiling.flops import Conventions, account
from adsc.profiling.shapes import shape_from_config

from .facts import ADSC_LAYERS, CHECKPOINT, GRID, VISION_TOKENS
from .runs import TWIN, Results, Run

BENCHES = [b for b in ORDER]


def _scores(result: dict) -> dict:
    return {b: r["headline"] for b, r in result.get("benchmarks", {}).items() if r.get("headline") is not None}


def _mean_scores(results: list[dict]) -> dict:
    keys = set.intersection(*(set(_scores(r)) for r in results))
    return {b: statistics.fmean(_scores(r)[b] for r in results) for b in keys}


def _rel(scores: dict, base: dict) -> float:
    return relative(scores, base) or 0.0


# A benchmark enters Avg. rel. % only where the full model scores at least this much (headline
# scale; MME perception is out of 2000, the others out of 100). Below it a relative score is a
# ratio of noise: the first full run scored TextVQA 1.8, so 2.8 read as 156 % and full fine-tuning's
# 6.6 as 367 %, which alone lifted an average by a third.
REL_FLOOR = {"mme": 200.0}
REL_FLOOR_DEFAULT = 10.0


def rel_base(base: dict) -> tuple[dict, list[str]]:
    """The full model's scores that relative scores may divide by, and the benchmarks left out."""
    kept = {b: v for b, v in base.items() if v >= REL_FLOOR.get(b, REL_FLOOR_DEFAULT)}
    return kept, [b for b in base if b not in kept]


def table4(checkpoint: Path, budgets, text_tokens: int = 40, new_tokens: int = 2) -> tuple[str, list[dict]]:
    """FLOPs (prefill + decode) and KV cache of the testbed model, full and at each budget."""
    from transformers import AutoConfig

    shape = shape_from_config(AutoConfig.from_pretrained(checkpoint), "testbed")
    conv = Conventions(kv_dtype_bytes=4)  # the testbed runs in fp32
    rows, lines = [], ["| model | tok | MFLOPs | rel % | KV KB | rel % |", "|---|---|---|---|---|---|"]
    full = account(shape, None, text_tokens, new_tokens, conventions=conv)
    for label, b in [("full", None)] + [("ADSC", b) for b in budgets]:
        per_layer = None
        if b is not None:
            sched = CompressionConfig(layers=ADSC_LAYERS, budget=b, vision_tokens=VISION_TOKENS).schedule(shape.text.layers)
            per_layer = sched.tokens_per_layer()
        acc = account(shape, per_layer, text_tokens, new_tokens, conventions=conv)
        row = {"model": label, "tokens": b or VISION_TOKENS, "flops": acc.total_flops, "kv_bytes": acc.kv_bytes,
               "flops_rel": acc.total_flops / full.total_flops, "kv_rel": acc.kv_bytes / full.kv_bytes}
        rows.append(row)
        lines.append(f"| {label} | {row['tokens']:g} | {acc.total_flops / 1e6:.1f} | {100 * row['flops_rel']:.1f} | "
                     f"{acc.kv_bytes / 1e3:.1f} | {100 * row['kv_rel']:.1f} |")
    note = (f"\n({text_tokens} text tokens, {new_tokens} generated, fp32 cache, attention counted as full rectangles, "
            f"vision tower included; `adsc.profiling.flops.account`)")
    return "\n".join(lines) + note, rows


def issue_checks(full: dict, recovery: dict, preset) -> list[dict]:
    """The two properties that make the testbed meaningful, measured on this run's own test set.

    1. The pretrained model sees: >= 90 % on the easy families (single category lookups).
    2. The tasks need detail: untrained uniform dropping at the smallest budget (1/9) costs
       >= 10 points of relative score (mean over phases; the best phase is shown too).
    """
    out = []
    b = full.get("benchmarks", {})
    easy = []
    if "pope" in b:
        easy.append(("POPE accuracy", b["pope"]["scores"]["accuracy_mean"]))
    for task in ("existence", "color"):
        sub = b.get("mme", {}).get("scores", {}).get("subtasks", {}).get(task)
        if sub:
            easy.append((f"MME {task} accuracy", sub["acc"]))
    for name, value in easy:
        out.append({"check": f"full model: {name}", "measured": value, "target": ">= 90", "met": value >= 90})
    tag = Run("adsc", budget=min(preset.budgets)).tag
    if tag in recovery:
        u = recovery[tag]["untrained_phase_rel"]
        for label, rel in (("mean over phases", u["mean"]), ("luckiest phase", u["max"])):
            cost = 100 - rel
            out.append({"check": f"untrained ADSC at {tag} tokens costs (rel. points, {label})", "measured": cost,
                        "target": ">= 10", "met": cost >= 10})
    return out


def _shown(path: Path) -> str:
    """The committed checkpoint by its place in the package, another path relative to the working
    folder when inside it: a committed report names no machine."""
    path, cwd = Path(path).resolve(), Path.cwd().resolve()
    if path == CHECKPOINT.resolve():
        return "adsc_testbed/checkpoint"
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def write_report(out: Path, preset, results: Results, seconds: float, seed: int, checkpoint: Path) -> dict:
    shown = _scores(results[Run("full")])
    base, left_out = rel_base(shown)  # every relative score below divides by these only
    rows = [("full", VISION_TOKENS, shown)]
    summary = {"preset": asdict(preset), "seed": seed, "seconds": round(seconds, 1), "tables": {}, "findings": []}
    fig_rows = [("full", VISION_TOKENS, shown)]
    recovery = {}
    twin_full = _scores(results[Run("full", TWIN)])
    for b in preset.budgets:
        tag = Run("adsc", budget=b).tag
        baseline = {m: _scores(results[Run(m, budget=b)]) for m in preset.baselines if Run(m, budget=b) in results}
        trained_scores = _scores(results[Run("adsc", "lora-reverse", b)])
        twin_scores = _scores(results[Run("adsc", TWIN, b)])
        for method, scores in baseline.items():
            rows.append((method, b, scores))
            fig_rows.append((method, b, scores))
        phase_runs = [results[Run("adsc", budget=b, phase=ph)] for ph in preset.phases]
        phase_rel = [_rel(_scores(r), base) for r in phase_runs]
        untrained = _mean_scores(phase_runs)
        rows.append((f"ADSC untrained (mean of {len(phase_runs)} phases)", b, untrained))
        rows.append(("twin (fine-tuned, no drop) + ADSC", b, twin_scores))
        rows.append(("**ADSC trained (LoRA, reverse)**", b, trained_scores))
        fig_rows += [("ADSC untrained", b, untrained), ("ADSC trained", b, trained_scores)]
        trained, twin = _rel(trained_scores, base), _rel(twin_scores, base)
        best_baseline = max(baseline, key=lambda m: _rel(baseline[m], base))
        recovery[tag] = {
            "adsc_trained_rel": trained, "twin_adsc_rel": twin, "recovery_points": trained - twin,
            "twin_full_rel": _rel(twin_full, base),
            "untrained_phase_rel": {"mean": statistics.fmean(phase_rel), "min": min(phase_rel), "max": max(phase_rel)},
            "best_baseline": best_baseline, "best_baseline_rel": _rel(baseline[best_baseline], base),
        }
    rows.append(("twin at full tokens (control)", VISION_TOKENS, twin_full))
    benches = [b for b in BENCHES if b in shown]
    layers = json.loads((Path(checkpoint) / "config.json").read_text())["text_config"]["num_hidden_layers"]
    lines = [f"# Synthetic testbed: preset `{preset.name}`, seed {seed}", ""]
    lines += [f"> {n}" for n in preset.notes]
    lines += ["", f"Pretrained model: `{_shown(checkpoint)}` ({VISION_TOKENS} vision tokens = {GRID}x{GRID}; "
              f"{layers} decoder layers). ADSC pruning layers {list(ADSC_LAYERS)}. "
              "Budgets are average vision tokens over all layers.", "",
              "## Table I analogue", "", table(rows, base, benches), ""]
    if left_out:
        lines += [f"Avg. rel. % leaves out {', '.join(left_out)}: the full model scores "
                  f"{', '.join(f'{shown[b]:.1f}' for b in left_out)} there (below the floor of "
                  f"{REL_FLOOR_DEFAULT:g}, or {REL_FLOOR['mme']:g} for MME), so a ratio to it is noise.", ""]
    summary["rel_left_out"] = left_out
    lines += ["## Recovery against the twin control", "",
              "| budget | ADSC trained rel % | twin + ADSC rel % | recovery (pts) "
              "| untrained ADSC rel % (min..max over phases) | best baseline |",
              "|---|---|---|---|---|---|"]
    for tag, r in recovery.items():
        u = r["untrained_phase_rel"]
        lines.append(f"| {tag} | {r['adsc_trained_rel']:.1f} | {r['twin_adsc_rel']:.1f} | {r['recovery_points']:+.1f} | "
                     f"{u['mean']:.1f} ({u['min']:.1f}..{u['max']:.1f}) | {r['best_baseline']} {r['best_baseline_rel']:.1f} |")
    summary["tables"]["recovery"] = recovery
    if preset.ablations:
        b = preset.budgets[-1]
        t2 = [(name, b, _scores(results[Run("adsc", weights, b)])) for name, weights in
              (("LoRA", "lora-reverse"), ("full fine-tuning", "full-reverse"))]
        t3 = [(name, b, _scores(results[Run("adsc", weights, b)])) for name, weights in
              (("direct", "lora-direct"), ("standard 1.2-1.1-1.0", "lora-standard"), ("reverse 0.8-0.9-1.0", "lora-reverse"))]
        lines += ["", "## Table II analogue (training regime)", "", table(t2, base, benches),
                  "", "## Table III analogue (curriculum)", "", table(t3, base, benches)]
    skipped = {run.label: reason for run, reason in results.skipped.items()}
    if skipped:
        lines += ["", f"Not run (the method cannot reach that budget on this {layers}-layer model):", ""]
        lines += [f"- {label}: {reason}" for label, reason in skipped.items()]
    summary["skipped"] = skipped
    t4, t4rows = table4(checkpoint, preset.budgets)
    lines += ["", "## Table IV analogue (analytical, this model)", "", t4, "", "## Figure 2", "", "![figure 2](figure2.png)", ""]
    checks = issue_checks(results[Run("full")], recovery, preset)
    summary["checks"] = checks
    lines += ["## Checks the testbed must pass (issue 7)", "", "| check | measured | target | |", "|---|---|---|---|"]
    lines += [f"| {c['check']} | {c['measured']:.1f} | {c['target']} | {'met' if c['met'] else '**not met**'} |" for c in checks]
    lines += [""]
    findings = []
    missed = [c for c in checks if not c["met"]]
    if missed:
        said = "; ".join(f"{c['check']} {c['measured']:.1f} (target {c['target']})" for c in missed)
        findings.append(f"Checks not met: {said}. Read the comparisons below only as far as these allow: where the "
                        "full model does not read the image for a family, dropping vision tokens changes that family "
                        "only through its language prior, and differences there are noise and fine-tuning drift.")
    for tag, r in recovery.items():
        verdict = "beats" if r["adsc_trained_rel"] > r["best_baseline_rel"] else "does NOT beat"
        findings.append(f"budget {tag}: trained ADSC {r['adsc_trained_rel']:.1f} % {verdict} the best baseline "
                        f"({r['best_baseline']}, {r['best_baseline_rel']:.1f} %); recovery over its twin "
                        f"{r['recovery_points']:+.1f} points; untrained uniform dropping costs "
                        f"{100 - r['untrained_phase_rel']['mean']:.1f} points.")
    summary["findings"] = findings
    lines += ["## Findings (as measured, not as hoped)", ""] + [f"- {f}" for f in findings]
    lines += ["", f"Total time {seconds / 60:.1f} min. Runs: `runs/<label>/results.json`."]
    out.mkdir(parents=True, exist_ok=True)
    plot(fig_rows, VISION_TOKENS, shown, benches, str(out / "figure2.png"))
    (out / "report.md").write_text("\n".join(lines) + "\n")
    summary["table1_rows"] = [{"method": m, "tokens": t, "scores": s, "rel": _rel(s, base)} for m, t, s in rows]
    summary["table4"] = t4rows
    summary["runs"] = results.records()  # every evaluation as a record: method, weights, budget, phase, scores
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    return summary
