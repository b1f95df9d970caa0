"""What a compressed forward kept of a multi-frame span, frame by frame (the video tests' check)."""


def kept_cells_per_frame(trace, span, layer: int, b: int = 0) -> list[list[int]]:
    """Per frame of ``span``, the raster indices into its grid of the tokens alive at ``layer``."""
    kept = set(trace.vision_positions(layer, b).tolist())
    positions = span.token_positions().tolist()
    cells = span.grid[0] * span.grid[1]
    return [[k for k in range(cells) if positions[f * cells + k] in kept] for f in range(span.frames)]
