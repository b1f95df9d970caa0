"""How the report says a number and decides a comparison: seed spreads (min..max over fine-tuning
seeds) and bootstrap intervals over questions (bootstrap.py), both in numbers.

The rule: two rows are "told apart" when the 95 % interval over questions of their difference
excludes 0 AND, where both have two or more fine-tuning seeds, their seed intervals do not
overlap (for a gap taken seed by seed, such as recovery: the per-seed gaps are all on one side
of 0). Either alone can mislead: the seed spread misses that another draw of questions would
move every row, the question interval that another seed would move a fine-tune. Where a kind of
interval is missing (one seed; a report from results without prediction files) the other
decides alone, and the verdict says so.
"""

from __future__ import annotations

import statistics


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


def said_ci(ci: dict | None, signed: bool = False) -> str:
    """A question interval as a table cell: '59.9..75.9' ('+8.7..+26.1' for a difference), '–' without one."""
    if ci is None:
        return "–"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(ci['low'])}..{f.format(ci['high'])}"


def _decide(points: float, ci: dict | None, seeds: str | None, seeds_apart: bool | None,
            seeds_why: str = "the seed intervals overlap") -> tuple[bool | None, str]:
    """(told apart, or None when no interval of either kind exists; the numbers and the verdict)."""
    parts = [f"{points:+.1f} points"]
    parts.append(f"95 % interval over questions {said_ci(ci, signed=True)}" if ci else "no question interval")
    parts.append(seeds if seeds else "one seed")
    numbers = ", ".join(parts)
    questions_apart = None if ci is None else (ci["low"] > 0 or ci["high"] < 0)
    if questions_apart is None and seeds_apart is None:
        return None, f"{numbers}: no interval, so not compared"
    why = [w for w, ok in (("the question interval includes 0", questions_apart), (seeds_why, seeds_apart)) if ok is False]
    if why:
        return False, f"{numbers}: not told apart ({' and '.join(why)})"
    return True, f"{numbers}: told apart"


def gap_verdict(gap: dict, ci: dict | None) -> dict:
    """A difference taken seed by seed (trained minus twin; trained minus a baseline): ``gap`` its
    seed spread, ``ci`` its question interval. {"told_apart": True/False/None, "said": the sentence}."""
    many = len(gap["values"]) > 1
    seeds = f"seeds {gap['min']:+.1f}..{gap['max']:+.1f}" if many else None
    apart, text = _decide(gap["mean"], ci, seeds, (gap["min"] > 0 or gap["max"] < 0) if many else None,
                          "the per-seed gaps are not all on one side of 0")
    return {"told_apart": apart, "said": text}


def compare(name_a: str, a: dict, name_b: str, b: dict, ci: dict | None = None) -> str:
    """The verdict on two rows' Avg. rel. % (seed spreads ``a``, ``b``; ``ci`` the question interval
    of a - b, seeds averaged inside each resample), said in numbers either way."""
    many = min(len(a["values"]), len(b["values"])) > 1
    seeds = f"seeds {a['min']:.1f}..{a['max']:.1f} vs {b['min']:.1f}..{b['max']:.1f}" if many else None
    apart, text = _decide(a["mean"] - b["mean"], ci, seeds, (a["min"] > b["max"] or b["min"] > a["max"]) if many else None)
    higher = f", {name_a if a['mean'] > b['mean'] else name_b} higher" if apart else ""
    return f"{name_a} {said(a)} vs {name_b} {said(b)}: {text}{higher}"


def beats(apart: bool | None, points: float) -> str:
    """The word a finding uses for a decided gap."""
    if apart is None:
        return "is not compared with"
    if not apart:
        return "is not told apart from"
    return "beats" if points > 0 else "does NOT beat"
