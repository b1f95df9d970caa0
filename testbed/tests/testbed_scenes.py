"""Hand-built scenes whose answers the tests check by hand (layout 12 x 12 cells at 336 px / 14)."""

from adsc_testbed.scene import Obj, Scene, make_text, object_bbox
from adsc_testbed.world import GridSpec

SPEC = GridSpec(336, 14, 2)


def obj(oid, color, shape, size, row, col):
    return Obj(oid, shape, color, size, row, col, object_bbox(SPEC, row, col, size))


def scene_one() -> Scene:
    """
    col:   2            6            9
    row 2  red circle   blue square
    row 3               "CAT" (black, label of the blue square)
    row 5  red square
    row 8                            green triangle
    row 10 "MILK" (red, free) at col 0
    """
    s = Scene("hand1", SPEC)
    s.objects = [obj(0, "red", "circle", "small", 2, 2), obj(1, "blue", "square", "large", 2, 6),
                 obj(2, "red", "square", "small", 5, 2), obj(3, "green", "triangle", "large", 8, 9)]
    s.texts = [make_text(SPEC, 0, "CAT", "black", 3, 6, under=1), make_text(SPEC, 1, "MILK", "red", 10, 0)]
    return s


def scene_two() -> Scene:
    """Two objects on one row: red circle (col 2) left of blue square (col 6)."""
    s = Scene("hand2", SPEC)
    s.objects = [obj(0, "red", "circle", "small", 2, 2), obj(1, "blue", "square", "large", 2, 6)]
    return s
