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
from types import SimpleNamespace

from .adapters import ADAPTERS, VisionSpan
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
        grids = ", ".join(f"{s.frames} x {s.grid[0]}x{s.grid[1]}" if s.frames > 1 else f"{s.grid[0]}x{s.grid[1]}"
                          for s in self.spans)
        extra = f" + {self.extra_tokens} newline/separator tokens (kept like text, not counted)" if self.extra_tokens else ""
        return f"{self.family}: {what}{size}: {self.vision_tokens} vision tokens on {grids}{extra}"


def families() -> list[str]:
    return [a.name.replace("_", "-") for a in ADAPTERS if a.config_class]


def layout(spec: str, frames: int | None = None) -> Layout:
    """The spans of ``spec`` (see the module docstring); ValueError naming the fix."""
    name, _, size = spec.partition(":")
    adapter = next((a for a in ADAPTERS if a.config_class and a.name == name.replace("-", "_")), None)
    if adapter is None:
        raise ValueError(f"--layout {spec!r}: unknown family {name!r}; choose one of {', '.join(families())}")
    image_size = None
    if size:
        height, sep, width = size.partition("x")
        if not (sep and height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
            raise ValueError(f"--layout {spec!r}: the size must be HEIGHTxWIDTH in pixels, e.g. {name}:672x672")
        image_size = (int(height), int(width))
    if frames is not None and frames < 1:
        raise ValueError(f"--video-frames must be at least 1, got {frames}")
    import transformers

    model = SimpleNamespace(config=getattr(transformers, adapter.config_class)())
    try:
        spans = adapter.layout(model, image_size, frames)
    except ValueError as err:
        raise ValueError(f"--layout {spec!r}: {err}") from None
    return Layout(name, image_size, frames, tuple(spans))


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
