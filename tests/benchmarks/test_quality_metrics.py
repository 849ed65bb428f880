"""The quality benchmark's measures on hand-made selections whose scores are known."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.quality_metrics import (
    activity_spans,
    audio_token_spans,
    changed_cell_recall,
    is_quiet,
    kept_cells,
    match_events,
    quiet_ranges,
    seconds_on_truth,
    sound_token_recall,
    tokens_inside,
)

FRAMES, ROWS, COLS = 3, 2, 4


def changed_truth() -> np.ndarray:
    changed = np.zeros((FRAMES, ROWS, COLS), bool)
    changed[0, 0, :3] = True  # 3 cells change in frame 0
    changed[2] = True  # all 8 in frame 2 (a flash); frame 1 is still
    return changed


def test_kept_cells_reads_indices_in_raster_order_per_frame():
    kept = kept_cells(np.array([0, 5, 8 + 7, 16]), FRAMES, ROWS, COLS)
    assert [tuple(c) for c in np.argwhere(kept)] == [(0, 0, 0), (0, 1, 1), (1, 1, 3), (2, 0, 0)]


def test_keeping_exactly_the_changed_cells_scores_one_and_keeping_none_scores_zero():
    changed = changed_truth()
    allowed = 8  # the preset allows every cell: the ceiling is the changed cells
    assert changed_cell_recall(changed, changed, allowed) == (11, 11)
    assert changed_cell_recall(np.zeros_like(changed), changed, allowed) == (0, 11)
    assert changed_cell_recall(~changed, changed, allowed) == (0, 11)


def test_the_ceiling_is_what_the_preset_allows_a_frame():
    changed = changed_truth()
    allowed = 2  # frame 0: min(3, 2); frame 2: min(8, 2); the still frame 1 does not count
    keep_two_changed = np.zeros_like(changed)
    keep_two_changed[0, 0, :2] = keep_two_changed[2, 1, :2] = True
    assert changed_cell_recall(keep_two_changed, changed, allowed) == (4, 4)
    assert changed_cell_recall(np.ones_like(changed), changed, allowed) == (4, 4)  # keeping all: capped at 1
    one_unchanged = np.zeros_like(changed)
    one_unchanged[0, 1, 0] = one_unchanged[2, 0, 0] = True
    assert changed_cell_recall(one_unchanged, changed, allowed) == (1, 4)


def test_sound_token_recall_counts_tokens_whose_centre_is_inside_an_event():
    spans = audio_token_spans(250, offset_s=10.0)  # a 10 s clip starting 10 s into the scene
    assert spans[0].tolist() == pytest.approx([10.0, 10.04]) and spans[-1].tolist() == pytest.approx([19.96, 20.0])
    inside = tokens_inside(spans, [(12.0, 13.0), (19.85, 25.0)])
    assert inside.sum() == 25 + 4 and inside[50:75].all() and not inside[49] and not inside[75]
    every_inside = np.flatnonzero(inside)
    assert sound_token_recall(every_inside, inside) == (29, 29)
    assert sound_token_recall(np.arange(0, 50), inside) == (0, 29)
    assert sound_token_recall(every_inside[::2], inside) == (15, 29)


def test_events_match_within_the_tolerance_and_a_report_far_away_is_wrong():
    truth = [(3.1, 4.7), (12.3, 12.8)]
    reported = [(2.0, 6.0), (14.0, 16.0), (40.0, 42.0)]
    strict = match_events(truth, reported, tolerance=0.0)
    assert (strict.found, strict.truth, strict.correct, strict.reported) == (1, 2, 1, 3)
    loose = match_events(truth, reported, tolerance=1.5)
    assert (loose.found, loose.correct) == (2, 2)
    assert match_events(truth, [], 1.0).found == 0 and match_events([], reported, 1.0).correct == 0


def test_quiet_ranges_keep_a_margin_from_every_event():
    events = [(10.0, 12.0), (14.0, 15.0), (40.0, 41.0)]
    assert quiet_ranges(events, 60.0, margin=3.0) == [(0.0, 7.0), (18.0, 37.0), (44.0, 60.0)]
    assert quiet_ranges([], 30.0) == [(0.0, 30.0)]
    assert quiet_ranges([(0.0, 29.0)], 30.0) == []
    assert is_quiet((20.0, 30.0), events) and not is_quiet((0.0, 10.5), events)


def test_precision_in_time_counts_reported_seconds_near_a_true_event():
    truth = [(3.0, 4.0), (4.5, 5.0)]
    assert seconds_on_truth(truth, [(2.0, 6.0)], tolerance=0.0) == (1.5, 4.0)
    assert seconds_on_truth(truth, [(2.0, 6.0)], tolerance=1.0) == (4.0, 4.0)  # 2..6 merged: no double count
    assert seconds_on_truth(truth, [(0.0, 600.0)], tolerance=1.0) == (4.0, 600.0)  # one long event: precise no more
    assert seconds_on_truth(truth, [], 1.0) == (0.0, 0)


def test_activity_spans_are_read_from_timeline_answers_in_utc_and_not_from_no_activity():
    answer = (
        "lobby: activity from 15:00:12 to 15:00:14 Europe/Berlin on 2026-03-14, 14:00:12 to 14:00:14 UTC (motion).\n"
        "street: activity from 14:00:02 to 14:00:04 UTC on 2024-05-01 (motion, loud sound).\n"
        "yard: no activity from 14:00:16 to 14:00:17 UTC on 2024-05-01 (1 clip checked)."
    )
    assert activity_spans(answer) == [("14:00:12", "14:00:14"), ("14:00:02", "14:00:04")]
