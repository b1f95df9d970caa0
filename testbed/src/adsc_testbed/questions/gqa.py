"""GQA-style attribute and relation questions with one-word answers.

Every candidate is enumerated from the annotation and kept only when its referring expression
picks exactly one object ("the square to the left of the red circle" must name one square).
Relational queries are kept only when the shape alone is ambiguous, so the relation is needed.
"""

from __future__ import annotations

import numpy as np

from ..scene import Obj, Scene
from ..world import COLORS, SHAPES
from .common import QA, RELATIONS, holds, pick, referable_pairs

KINDS = ("queryColorRel", "queryShapeRel", "chooseRel", "verifyRel", "chooseAttr")
# GQA's three-level question types; detailed names follow GQA where one fits and are ours otherwise.
TYPES = {
    "queryColorRel": {"structural": "query", "semantic": "attr", "detailed": "relColor"},
    "queryShapeRel": {"structural": "query", "semantic": "rel", "detailed": "relS"},
    "chooseRel": {"structural": "choose", "semantic": "rel", "detailed": "chooseRel"},
    "verifyRel": {"structural": "verify", "semantic": "rel", "detailed": "verifyRel"},
    "chooseAttr": {"structural": "choose", "semantic": "attr", "detailed": "chooseAttr"},
}


def _select(obj: Obj) -> dict:
    return {"operation": "select", "argument": f"{obj.shape} ({obj.id})", "dependencies": []}


def _qa(kind, question, answer, full, program, target_ids, group=None) -> QA:
    return QA("gqa", kind, question, answer, {"fullAnswer": full, "types": TYPES[kind], "semantic": program,
                                              "objects": target_ids, "group": group})


def candidates(scene: Scene) -> dict[str, list[QA]]:
    out = {k: [] for k in KINDS}
    anchors = scene.unique_objects()
    for b in anchors:
        for rel in RELATIONS:
            for shape in SHAPES:  # "What color is the <shape> <rel> the <b>?"
                hits = [o for o in scene.matching(shape=shape) if o.id != b.id and holds(rel, o, b)]
                if len(hits) == 1 and len(scene.matching(shape=shape)) > 1:
                    t = hits[0]
                    prog = [_select(b), {"operation": "relate", "argument": f"{shape},{rel},s ({t.id})", "dependencies": [0]},
                            {"operation": "query", "argument": "color", "dependencies": [1]}]
                    out["queryColorRel"].append(_qa("queryColorRel", f"What color is the {shape} {rel} the {b.name}?",
                                                    t.color, f"The {shape} is {t.color}.", prog, [b.id, t.id], "color"))
            for color in COLORS:  # "What shape is the <colour> object <rel> the <b>?"
                hits = [o for o in scene.matching(color=color) if o.id != b.id and holds(rel, o, b)]
                if len(hits) == 1 and len(scene.matching(color=color)) > 1:
                    t = hits[0]
                    prog = [_select(b), {"operation": "relate", "argument": f"_,{rel},s ({t.id})", "dependencies": [0]},
                            {"operation": "filter color", "argument": color, "dependencies": [1]},
                            {"operation": "query", "argument": "name", "dependencies": [2]}]
                    out["queryShapeRel"].append(_qa("queryShapeRel", f"What shape is the {color} object {rel} the {b.name}?",
                                                    t.shape, f"The {color} object is a {t.shape}.", prog, [b.id, t.id], "shape"))
    for a, b in referable_pairs(scene):
        prog = [_select(a), _select(b)]
        if a.col != b.col:
            side = "left" if a.col < b.col else "right"
            out["chooseRel"].append(_qa("chooseRel", f"Is the {a.name} to the left or to the right of the {b.name}?",
                                        side, f"The {a.name} is to the {side} of the {b.name}.",
                                        prog + [{"operation": "choose rel", "argument": "to the left of|to the right of",
                                                 "dependencies": [0, 1]}], [a.id, b.id]))
        if a.row != b.row:
            side = "above" if a.row < b.row else "below"
            out["chooseRel"].append(_qa("chooseRel", f"Is the {a.name} above or below the {b.name}?",
                                        side, f"The {a.name} is {side} the {b.name}.",
                                        prog + [{"operation": "choose rel", "argument": "above|below",
                                                 "dependencies": [0, 1]}], [a.id, b.id]))
        for rel in RELATIONS:
            yes = holds(rel, a, b)
            full = f"{'Yes' if yes else 'No'}, the {a.name} is {'' if yes else 'not '}{rel} the {b.name}."
            out["verifyRel"].append(_qa("verifyRel", f"Is the {a.name} {rel} the {b.name}?", "yes" if yes else "no", full,
                                        prog + [{"operation": "verify rel", "argument": rel, "dependencies": [0, 1]}],
                                        [a.id, b.id]))
    for a in anchors:
        out["chooseAttr"].append(_qa("chooseAttr", f"Is the {a.name} small or large?", a.size,
                                     f"The {a.name} is {a.size}.",
                                     [_select(a), {"operation": "choose size", "argument": "small|large",
                                                   "dependencies": [0]}], [a.id]))
    return out


def gqa_questions(scene: Scene, rng: np.random.Generator, k: int = 4) -> list[QA]:
    """Up to k questions of different kinds where possible; verify questions balanced yes/no."""
    cands = candidates(scene)
    verify = cands.pop("verifyRel")
    want = "yes" if rng.random() < 0.5 else "no"
    cands["verifyRel"] = [q for q in verify if q.answer == want] or verify
    kinds = [k_ for k_ in KINDS if cands[k_]]
    out, seen = [], set()
    for kind in pick(rng, kinds, len(kinds)) * k:  # round-robin over the available kinds
        if len(out) == k:
            break
        fresh = [q for q in cands[kind] if q.question not in seen]
        if fresh:
            q = pick(rng, fresh, 1)[0]
            seen.add(q.question)
            out.append(q)
    return out
