"""Token layouts by name, for ``adsc schedule --layout`` and ``adsc profile --layout``.

A layout is ``FAMILY[:HEIGHTxWIDTH]`` (``llava-next:672x672``; family = an adapter name, ``-`` or
``_``), optionally with a frame count (a video of N input frames of that size). Its vision spans
come from the family's adapter (:meth:`adsc.adapters.Adapter.layout`) applied to the released
model's default config, so the CLIs count what the engine sees -- grid tokens only; newline or
separator tokens are reported as ``extra`` (kept like text, never counted) -- and the per-layer
counts on a layout are the method's own per-span ones (:func:`kept_on_layout`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import groupby
from types import SimpleNamespace

from .adapters import ADAPTERS, ImageSizeNeeded, VisionSpan
from .methods import get_method
from .methods.common import image_count
from .schedule import Schedule, schedule_from_counts


@dataclass(frozen=True)
class Layout:
    family: str
    image_size: tuple[int, int] | None
    frames: int | None
    spans: tuple[VisionSpan, ...]

    @property
    def vision_tokens(self) -> int:
        return sum(s.length for s in self.spans)

    @property
    def extra_tokens(self) -> int:
        return sum(len(s.extra) for s in self.spans)

    def describe(self) -> str:
        what = f"a video of {self.frames} frames" if self.frames else "an image"
        size = f" of {self.image_size[0]}x{self.image_size[1]}" if self.image_size else ""
        grids = ", ".join(_grids(span, len(list(same))) for span, same in groupby(self.spans, key=lambda s: (s.frames, s.grid)))
        extra = f" + {self.extra_tokens} newline/separator tokens (kept like text, not counted)" if self.extra_tokens else ""
        return f"{self.family}: {what}{size}: {self.vision_tokens} vision tokens on {grids}{extra}"


def _grids(frames_grid, repeats: int) -> str:
    """'8 x 14x14' for a span of 8 frames; '17 spans of 8x8' for 17 equal spans in a row (tiles, sub-images)."""
    frames, (rows, cols) = frames_grid
    one = f"{frames} x {rows}x{cols}" if frames > 1 else f"{rows}x{cols}"
    return one if repeats == 1 else f"{repeats} spans of {one}"


def _released() -> dict[str, tuple]:
    """Layout name (``-`` spelling) -> (adapter, function making the released model's config)."""
    return {name.replace("_", "-"): (a, make) for a in ADAPTERS for name, make in a.layout_configs().items()}


def families() -> list[str]:
    return list(_released())


def layout(spec: str, frames: int | None = None) -> Layout:
    """The spans of ``spec`` (see the module docstring); ValueError naming the fix."""
    name, _, size = spec.partition(":")
    adapter, make_config = _released().get(name.replace("_", "-"), (None, None))
    if adapter is None:
        raise ValueError(f"--layout {spec!r}: unknown family {name!r}; choose one of {', '.join(families())}")
    image_size = None
    if size:
        height, sep, width = size.partition("x")
        if not (sep and height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
            raise ValueError(f"--layout {spec!r}: the size must be HEIGHTxWIDTH in pixels, e.g. {_sized(name)}")
        image_size = (int(height), int(width))
    if frames is not None and frames < 1:
        raise ValueError(f"--video-frames must be at least 1, got {frames}")
    model = SimpleNamespace(config=make_config())
    try:
        spans = adapter.layout(model, image_size, frames)
    except ImageSizeNeeded as err:
        raise ValueError(f"--layout {spec!r}: {err}; give it as --layout {name}:HEIGHTxWIDTH in pixels, "
                         f"e.g. --layout {_sized(name)}") from None
    except ValueError as err:
        raise ValueError(f"--layout {spec!r}: {err}") from None
    return Layout(name, image_size, frames, tuple(spans))


def _sized(name: str) -> str:
    """An example of the size syntax :func:`layout` parses, for a fix in an error message."""
    return f"{name}:672x672"


def layout_from_args(args) -> Layout | None:
    """The input of the CLIs' --layout / --video-frames flags (None without them); ValueError naming the fix."""
    if args.layout is None:
        if args.video_frames is not None:
            raise ValueError("--video-frames needs --layout FAMILY[:HxW] (the family that lays the video out)")
        return None
    return layout(args.layout, args.video_frames)


def on_layout(config, schedule: Schedule, spans) -> Schedule:
    """``schedule`` (solved for the layout's token count) with the counts the method keeps on ``spans``."""
    if not schedule.stage_layers:
        return schedule
    kept = kept_on_layout(config, schedule, spans)
    return replace(schedule_from_counts(schedule.num_layers, schedule.vision_tokens, schedule.stage_layers, kept),
                   ratio=schedule.ratio)


def kept_on_layout(config, schedule, spans) -> list[int]:
    """Vision tokens kept from each stage on, summed over ``spans`` as the method's own selector counts
    them: score-free selectors per span (per frame) from their kept sets, the others an image's share
    of the schedule's counts (``methods.common.image_count``)."""
    selector = get_method(config.method).selector(config, schedule)
    if hasattr(selector, "kept_in_span"):
        return [sum(len(selector.kept_in_span(s, stage)) for s in spans) for stage in range(len(schedule.stage_layers))]
    return [sum(image_count(k, schedule.vision_tokens, s.length) for s in spans) for k in schedule.keep_counts]
