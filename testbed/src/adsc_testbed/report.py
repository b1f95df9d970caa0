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
from .tuning import Setting, default_setting

BENCHES = [b for b in ORDER]


def headlines(result: dict) -> dict:
    return {b: r["headline"] for b, r in result.get("benchmarks", {}).items() if r.get("headline") is not None}


def _mean_scores(results: list[dict]) -> dict:
    keys = set.intersection(*(set(headlines(r)) for r in results))
    return {b: statistics.fmean(headlines(r)[b] for r in results) for b in keys}


def relative_score(scores: dict, base: dict) -> float:
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


def spread(values: list[float]) -> dict:
    """Mean and min..max of one number over fine-tuning seeds (one value: no spread)."""
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "values": list(values)}


def said(sp: dict) -> str:
    """'70.1 (68.0..72.3)', or '70.1 (one seed)'."""
    if len(sp["values"]) < 2:
        return f"{sp['mean']:.1f} (one seed)"
    return f"{sp['mean']:.1f} ({sp['min']:.1f}..{sp['max']:.1f})"


def said_gap(gap: dict) -> str:
    """A recovery spread in signed points: '+16.3 (+12.0..+19.1)'."""
    one = len(gap["values"]) < 2
    return f"{gap['mean']:+.1f}" + (" (one seed)" if one else f" ({gap['min']:+.1f}..{gap['max']:+.1f})")


def compare(name_a: str, a: dict, name_b: str, b: dict) -> str:
    """The verdict on two rows' Avg. rel. % over seeds: told apart only when the min..max intervals
    are disjoint, and said in numbers either way."""
    both = f"{name_a} {said(a)} vs {name_b} {said(b)}"
    if min(len(a["values"]), len(b["values"])) < 2:
        return f"{both}: one seed, no interval, so not compared"
    if a["min"] > b["max"] or b["min"] > a["max"]:
        higher = name_a if a["mean"] > b["mean"] else name_b
        return f"{both}: told apart (intervals disjoint), {higher} higher"
    return f"{both}: not told apart (intervals overlap)"


def against(sp: dict, value: float) -> str:
    """A seed spread against one number: 'beats' / 'does NOT beat' only when the whole interval is on one side."""
    if sp["min"] > value:
        return "beats"
    if sp["max"] < value:
        return "does NOT beat"
    return "is not told apart from" if len(sp["values"]) > 1 else "ties"


def seed_runs(results: Results, weights: str, budget: float | None, setting: str, method: str = "adsc") -> list[dict]:
    """One fine-tuned row's evaluations over every seed the experiment ran."""
    out, seed = [], 0
    while (run := Run(method, weights, budget, setting=setting, seed=seed)) in results:
        out.append(results[run])
        seed += 1
    return out


def tuned_setting(results: Results, method: str, budget: float) -> str:
    tuning = results.tuned.get((method, budget))
    return tuning.chosen if tuning else ""


def adsc_setting(results: Results, budget: float) -> str:
    """ADSC's chosen layers' name, "" when they are its default ones (the runs' folder names)."""
    chosen = tuned_setting(results, "adsc", budget)
    return "" if chosen == Setting(ADSC_LAYERS).name else chosen


def tuning_table(results: Results, base: dict, preset) -> tuple[list[str], list[dict]]:
    """For every tuned method and budget: the untuned default on test, every tried setting on
    validation, the chosen one on validation and on test."""
    lines = ["| method | tok | untuned setting | untuned test rel % | chosen setting | its validation rel % "
             "| its test rel % | settings tried (validation rel %) |", "|---|---|---|---|---|---|---|---|"]
    rows = []
    for (method, b), tuning in results.tuned.items():
        default = default_setting(method).name
        untuned_run = Run(method, budget=b) if method != "adsc" else Run("adsc", budget=b, phase=0.5)
        untuned = relative_score(headlines(results[untuned_run]), base) if untuned_run in results else None
        test = relative_score(headlines(results[Run(method, budget=b, setting=tuning.chosen)]), base)
        rows.append({"method": method, "budget": b, "untuned_setting": default, "untuned_test_rel": untuned,
                     "chosen": tuning.chosen, "validation_rel": tuning.validation[tuning.chosen], "test_rel": test,
                     "validation": tuning.validation})
        tried = ", ".join(f"{k} {v:.1f}" for k, v in tuning.validation.items())
        lines.append(f"| {method} | {b:g} | {default} | {'–' if untuned is None else f'{untuned:.1f}'} | "
                     f"{tuning.chosen} | {tuning.validation[tuning.chosen]:.1f} | {test:.1f} | {tried} |")
    return lines, rows


def write_report(out: Path, preset, results: Results, seconds: float, seed: int, checkpoint: Path) -> dict:
    shown = headlines(results[Run("full")])
    base, left_out = rel_base(shown)  # every relative score below divides by these only
    rows = [("full", VISION_TOKENS, shown)]
    summary = {"preset": asdict(preset), "seed": seed, "seconds": round(seconds, 1), "tables": {}, "findings": []}
    fig_rows = [("full", VISION_TOKENS, shown)]
    recovery = {}
    twins_full = seed_runs(results, TWIN, None, "", method="full")
    n_seeds = len(twins_full)
    of_seeds = f" (mean of {n_seeds} seeds)" if n_seeds > 1 else ""
    twin_full = _mean_scores(twins_full)

    def rels(runs: list[dict]) -> dict:
        return spread([relative_score(headlines(r), base) for r in runs])

    for b in preset.budgets:
        tag = Run("adsc", budget=b).tag
        untuned = {m: headlines(results[Run(m, budget=b)]) for m in preset.baselines if Run(m, budget=b) in results}
        tuned = {m: (tuned_setting(results, m, b), headlines(results[Run(m, budget=b, setting=tuned_setting(results, m, b))]))
                 for m in preset.baselines if (m, b) in results.tuned}
        for method, scores in untuned.items():
            rows.append((f"{method} untuned ({default_setting(method).name})", b, scores))
            fig_rows.append((f"{method} untuned", b, scores))
        for method, (setting, scores) in tuned.items():
            rows.append((f"{method} tuned ({setting})", b, scores))
            fig_rows.append((f"{method} tuned", b, scores))
        phase_runs = [results[Run("adsc", budget=b, phase=ph)] for ph in preset.phases]
        phase_rel = [relative_score(headlines(r), base) for r in phase_runs]
        untrained = _mean_scores(phase_runs)
        setting = adsc_setting(results, b)
        layers_name = tuned_setting(results, "adsc", b) or Setting(ADSC_LAYERS).name
        trained_runs = seed_runs(results, "lora-reverse", b, setting)
        twin_runs = seed_runs(results, TWIN, b, setting)
        trained_scores, twin_scores = _mean_scores(trained_runs), _mean_scores(twin_runs)
        rows.append((f"ADSC untrained {Setting(ADSC_LAYERS).name} (mean of {len(phase_runs)} phases)", b, untrained))
        if ("adsc", b) in results.tuned:
            chosen = headlines(results[Run("adsc", budget=b, setting=layers_name)])
            rows.append((f"ADSC untrained tuned ({layers_name})", b, chosen))
        rows.append((f"twin (fine-tuned, no drop) + ADSC {layers_name}{of_seeds}", b, twin_scores))
        rows.append((f"**ADSC trained (LoRA, reverse) {layers_name}{of_seeds}**", b, trained_scores))
        fig_rows += [("ADSC untrained", b, untrained), ("ADSC trained", b, trained_scores)]
        # the best baseline is each method at its validation-chosen setting (untuned where not tuned)
        best_of = {m: tuned[m][1] if m in tuned else untuned[m] for m in {*untuned, *tuned}}
        best_baseline = max(sorted(best_of), key=lambda m: relative_score(best_of[m], base))
        trained, twin = rels(trained_runs), rels(twin_runs)
        gaps = spread([t - w for t, w in zip(trained["values"], twin["values"])])
        recovery[tag] = {
            "adsc_layers": layers_name, "adsc_trained_rel": trained["mean"], "twin_adsc_rel": twin["mean"],
            "recovery_points": gaps["mean"], "seeds": {"trained": trained, "twin": twin, "recovery": gaps},
            "twin_full_rel": relative_score(twin_full, base),
            "untrained_phase_rel": {"mean": statistics.fmean(phase_rel), "min": min(phase_rel), "max": max(phase_rel)},
            "best_baseline": best_baseline, "best_baseline_rel": relative_score(best_of[best_baseline], base),
        }
    rows.append((f"twin at full tokens (control){of_seeds}", VISION_TOKENS, twin_full))
    benches = [b for b in BENCHES if b in shown]
    layers = json.loads((Path(checkpoint) / "config.json").read_text())["text_config"]["num_hidden_layers"]
    lines = [f"# Synthetic testbed: preset `{preset.name}`, seed {seed}", ""]
    lines += [f"> {n}" for n in preset.notes]
    lines += ["", f"Pretrained model: `{_shown(checkpoint)}` ({VISION_TOKENS} vision tokens = {GRID}x{GRID}; "
              f"{layers} decoder layers). Default ADSC pruning layers {list(ADSC_LAYERS)} (`L1-3-6-9`; every "
              "fine-tune uses the layer set chosen on validation). Budgets are average vision tokens over all layers. "
              "Untuned rows run each baseline at its published default scaled to this depth; tuned rows at the "
              f"setting chosen on the validation split ({preset.val_questions} questions per benchmark, another "
              f"generation seed, no id shared with the test split); fine-tuned rows are the mean of {n_seeds} "
              "fine-tuning seed(s) (same checkpoint, same data).", "",
              "## Table I analogue", "", table(rows, base, benches), ""]
    if left_out:
        lines += [f"Avg. rel. % leaves out {', '.join(left_out)}: the full model scores "
                  f"{', '.join(f'{shown[b]:.1f}' for b in left_out)} there (below the floor of "
                  f"{REL_FLOOR_DEFAULT:g}, or {REL_FLOOR['mme']:g} for MME), so a ratio to it is noise.", ""]
    summary["rel_left_out"] = left_out
    t_lines, t_rows = tuning_table(results, base, preset)
    lines += ["## Tuning on the validation split", "",
              "Settings are named by pruning layers (`L3`: FastV's K=3, ToMe's first merging layer 3), options "
              "and seed; the budget solves the rest (FastV's kept count, PyramidDrop's lambda, ToMe's r). A setting "
              "that cannot reach the budget is not tried.", ""] + t_lines + [""]
    summary["tables"]["tuning"] = t_rows
    lines += ["## Recovery against the twin control", "",
              f"Mean over {n_seeds} fine-tuning seed(s), min..max in brackets; recovery is trained minus twin, seed by seed.", "",
              "| budget | ADSC layers | ADSC trained rel % | twin + ADSC rel % | recovery (pts) "
              "| untrained ADSC rel % (min..max over phases) | best baseline (tuned) |",
              "|---|---|---|---|---|---|---|"]
    for tag, r in recovery.items():
        u, sd = r["untrained_phase_rel"], r["seeds"]
        lines.append(f"| {tag} | {r['adsc_layers']} | {said(sd['trained'])} | {said(sd['twin'])} | {said_gap(sd['recovery'])} | "
                     f"{u['mean']:.1f} ({u['min']:.1f}..{u['max']:.1f}) | {r['best_baseline']} {r['best_baseline_rel']:.1f} |")
    summary["tables"]["recovery"] = recovery
    verdicts = []
    if preset.ablations:
        b = preset.budgets[-1]
        setting = adsc_setting(results, b)
        runs = {w: seed_runs(results, w, b, setting) for w in ("lora-reverse", "full-reverse", "lora-direct", "lora-standard")}
        names = {"lora-reverse": "reverse 0.8-0.9-1.0", "full-reverse": "full fine-tuning",
                 "lora-direct": "direct", "lora-standard": "standard 1.2-1.1-1.0"}
        sp = {w: rels(r) for w, r in runs.items()}
        t2 = [(f"{name}{of_seeds}", b, _mean_scores(runs[w]))
              for name, w in (("LoRA", "lora-reverse"), ("full fine-tuning", "full-reverse"))]
        t3 = [(f"{names[w]}{of_seeds}", b, _mean_scores(runs[w])) for w in ("lora-direct", "lora-standard", "lora-reverse")]
        verdicts = [compare("LoRA", sp["lora-reverse"], "full fine-tuning", sp["full-reverse"])]
        verdicts += [compare(names[x], sp[x], names[y], sp[y]) for x, y in
                     (("lora-reverse", "lora-direct"), ("lora-reverse", "lora-standard"), ("lora-direct", "lora-standard"))]
        spread_lines = ["| row | Avg. rel. % mean (min..max over seeds) | per seed |", "|---|---|---|"]
        spread_lines += [f"| {names[w] if w != 'lora-reverse' else 'LoRA, reverse'} | {said(sp[w])} | "
                         f"{', '.join(f'{v:.1f}' for v in sp[w]['values'])} |" for w in sp]
        lines += ["", "## Table II analogue (training regime)", "", table(t2, base, benches),
                  "", "## Table III analogue (curriculum)", "", table(t3, base, benches),
                  "", "### Seed spreads of Tables II and III", "", *spread_lines, "", *[f"- {v}" for v in verdicts]]
        summary["tables"]["ablation_seeds"] = {w: sp[w] for w in sp}
    summary["verdicts"] = verdicts
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
        said_missed = "; ".join(f"{c['check']} {c['measured']:.1f} (target {c['target']})" for c in missed)
        findings.append(f"Checks not met: {said_missed}. Read the comparisons below only as far as these allow: where the "
                        "full model does not read the image for a family, dropping vision tokens changes that family "
                        "only through its language prior, and differences there are noise and fine-tuning drift.")
    for tag, r in recovery.items():
        sd = r["seeds"]
        findings.append(f"budget {tag}: trained ADSC {said(sd['trained'])} % {against(sd['trained'], r['best_baseline_rel'])} "
                        f"the best tuned baseline ({r['best_baseline']}, {r['best_baseline_rel']:.1f} %); recovery over "
                        f"its twin {said_gap(sd['recovery'])} points; untrained uniform dropping costs "
                        f"{100 - r['untrained_phase_rel']['mean']:.1f} points.")
    findings += verdicts
    summary["findings"] = findings
    lines += ["## Findings (as measured, not as hoped)", ""] + [f"- {f}" for f in findings]
    lines += ["", f"Total time {seconds / 60:.1f} min. Runs: `runs/<label>/results.json` (validation runs: `runs/val-*`)."]
    out.mkdir(parents=True, exist_ok=True)
    plot(fig_rows, VISION_TOKENS, shown, benches, str(out / "figure2.png"))
    (out / "report.md").write_text("\n".join(lines) + "\n")
    summary["table1_rows"] = [{"method": m, "tokens": t, "scores": s, "rel": relative_score(s, base)} for m, t, s in rows]
    summary["table4"] = t4rows
    summary["runs"] = results.records()  # every evaluation as a record: method, weights, budget, phase, setting, seed, split
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    return summary
