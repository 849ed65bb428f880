"""What the CLI prints under an answer: the coverage line says what was seen as tokens and what was summarised."""

from __future__ import annotations

from datetime import datetime, timezone

from services.cli.rendering import coverage_line
from services.http import schemas


def test_the_coverage_line_names_tokens_disk_summaries_and_thinned_stretches():
    thinned = schemas.ThinnedRange(
        camera_id="yard",
        start=datetime(2026, 3, 14, 1, tzinfo=timezone.utc),
        end=datetime(2026, 3, 14, 2, tzinfo=timezone.utc),
        level="scores_only",
        clips=360,
    )
    coverage = schemas.Coverage(
        clips_in_range=2160, clips_as_tokens=58, clips_summarised=2102, clips_cold=12, summary_batches=3,
        thinned_ranges=[thinned, thinned],
    )  # fmt: skip
    assert coverage_line(coverage) == (
        "coverage: 2160 clips in range, 58 as tokens (12 from disk), 2102 summarised in 3 batch summaries, "
        "2 thinned stretches"
    )
    whole = coverage.model_copy(update={"clips_cold": 0, "summary_batches": 0, "thinned_ranges": []})
    assert coverage_line(whole) == "coverage: 2160 clips in range, 58 as tokens, 2102 summarised"
