"""`omnisift train` on generated captioned videos: it trains, writes a selector file the service then
compresses with, and refuses a bad manifest line by line before encoding anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from services.cli.main import app
from services.models import model_setup
from services.settings import Settings

EVENT = SceneEvent("object", "person walking right", 0.5, 3.5, (220, 30, 30), ((0.1, 0.6), (0.9, 0.6)))


def omnisift(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"OMNISIFT_CONFIG": None, **(env or {})})


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("captioned")
    (root / "clips").mkdir()
    for name in ("walk", "still"):
        events = (EVENT,) if name == "walk" else ()
        write_sample_video(root / "clips" / f"{name}.mp4", width=192, height=128, duration=4.0, events=events)
    return root


def write_manifest(root: Path, lines: list[object]) -> Path:
    path = root / "manifest.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_train_writes_a_selector_the_service_compresses_with(videos, tmp_path):
    manifest = write_manifest(
        videos,
        [
            {"video": "clips/walk.mp4", "answer": "A person in red walks from left to right."},
            "",  # blank lines are allowed
            {"video": str(videos / "clips" / "still.mp4"), "question": "Anything?", "answer": "Nothing moves."},
        ],
    )
    output = tmp_path / "out" / "selector.safetensors"

    result = omnisift("train", str(manifest), "-o", str(output), "--epochs", "2", "--batch-size", "1",
                      "--learning-rate", "1e-3")  # fmt: skip

    assert result.exit_code == 0, result.output
    steps = [line for line in result.output.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1/4", "2/4", "3/4", "4/4"]
    assert output.is_file() and f"OMNISIFT_SELECTOR_WEIGHTS={output}" in result.output

    trained = model_setup(Settings(selector_weights=output)).compressor
    untrained = model_setup(Settings()).compressor
    assert trained.selector is not None and untrained.selector is None
    assert "selector-" in trained.fingerprint and trained.fingerprint != untrained.fingerprint


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", ":2: not JSON"),
        ({"answer": "x"}, ':2: needs a "video" path'),
        ({"video": "clips/walk.mp4"}, ':2: needs a non-empty "answer"'),
        ({"video": "clips/walk.mp4", "answer": "x", "question": ""}, ':2: "question" must be non-empty'),
        ({"video": "clips/missing.mp4", "answer": "x"}, ":2: no such video file"),
    ],
)
def test_a_bad_manifest_line_is_named_before_any_work(videos, tmp_path, line, reason):
    manifest = write_manifest(tmp_path, [{"video": str(videos / "clips" / "walk.mp4"), "answer": "ok"}, line])
    output = tmp_path / "selector.safetensors"
    result = omnisift("train", str(manifest), "-o", str(output))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert reason in result.stderr and "step " not in result.output
    assert not output.exists()


def test_a_manifest_that_is_missing_or_has_no_examples_is_refused(tmp_path):
    assert "no such manifest" in omnisift("train", str(tmp_path / "none.jsonl"), "-o", "x").stderr
    empty = write_manifest(tmp_path, [""])
    assert "no examples" in omnisift("train", str(empty), "-o", "x").stderr


def test_train_refuses_a_method_without_a_selector_and_a_preset_that_keeps_all_audio(videos, tmp_path):
    manifest = write_manifest(videos, [{"video": "clips/walk.mp4", "answer": "A person walks."}])
    output = tmp_path / "selector.safetensors"
    result = omnisift("train", str(manifest), "-o", str(output), env={"OMNISIFT_COMPRESSION_METHOD": "dycoke"})
    assert result.exit_code == 1 and "only omnisift uses a selector" in result.stderr
    result = omnisift("train", str(manifest), "-o", str(output), env={"OMNISIFT_COMPRESSION_PRESET": "100%"})
    assert result.exit_code == 1 and "nothing to learn" in result.stderr
    assert not output.exists()
