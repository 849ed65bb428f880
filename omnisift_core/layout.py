"""Qwen2.5-Omni's token layout: TMRoPE positions per second, 2-second chunks, and the merged video grid.

Torch-free, so the store's records and the query planner can name a grid without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

POSITIONS_PER_SECOND = 25  # Qwen2.5-Omni `position_id_per_seconds`
SECONDS_PER_CHUNK = 2  # Qwen2.5-Omni `seconds_per_chunk`
POSITIONS_PER_CHUNK = POSITIONS_PER_SECOND * SECONDS_PER_CHUNK
AUDIO_TOKENS_PER_SECOND = 25


@dataclass(frozen=True)
class VideoGrid:
    """The merged video token grid of a whole clip: frames x rows x cols (one frame per temporal patch)."""

    frames: int
    rows: int
    cols: int

    @property
    def tokens_per_frame(self) -> int:
        return self.rows * self.cols

    @property
    def num_tokens(self) -> int:
        return self.frames * self.tokens_per_frame
