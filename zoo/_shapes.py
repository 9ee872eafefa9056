"""Spatial-size arithmetic the builders use to reject inputs their network cannot process.

A network's downsampling path is a list of `Stage`s; `spatial_sizes` runs a size through
them and `minimum_input_size` finds the smallest size that leaves every stage at least one
pixel, so the error message can say what would be accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from layers.arithmetic import conv_output_size


@dataclass(frozen=True)
class Stage:
    """One sliding-window stage (convolution or pool) along one spatial dimension:
    `floor((n + 2p - d(k-1) - 1)/s) + 1`, rounded up with `ceil_mode` (PyTorch's rule), as
    `layers.arithmetic.conv_output_size` computes it."""

    name: str
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    ceil_mode: bool = False

    def output_size(self, n: int) -> int:
        """The stage's output size for input size `n`; 0 if its window does not fit."""
        try:
            return conv_output_size(
                n, self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode
            )
        except ValueError:  # the window is larger than the padded input
            return 0


def spatial_sizes(size: int, stages: Sequence[Stage]) -> list[int]:
    """The size after each stage (a 0 means the stage has nothing left to process)."""
    sizes = []
    for stage in stages:
        size = stage.output_size(size) if size > 0 else 0
        sizes.append(size)
    return sizes


def minimum_input_size(stages: Sequence[Stage], limit: int = 4096) -> int:
    """The smallest input size for which every stage outputs at least one pixel."""
    for size in range(1, limit + 1):
        if min(spatial_sizes(size, stages)) >= 1:
            return size
    raise ValueError(f"No input size up to {limit} passes the stages {stages!r}.")


def check_input_size(
    model_name: str, input_shape: Sequence[int], stages: Sequence[Stage], hint: str = ""
) -> list[tuple[int, int]]:
    """Raises `ValueError` naming the input size and the minimum if the stages run out of
    pixels; returns the (height, width) after each stage otherwise."""
    height, width = input_shape[0], input_shape[1]
    heights, widths = spatial_sizes(height, stages), spatial_sizes(width, stages)
    for stage, h, w in zip(stages, heights, widths, strict=True):
        if min(h, w) < 1:
            minimum = minimum_input_size(stages)
            raise ValueError(
                f"Input {height}x{width} is too small for '{model_name}': the minimum is "
                f"{minimum}x{minimum} (the feature map vanishes at '{stage.name}').{hint}"
            )
    return list(zip(heights, widths, strict=True))
