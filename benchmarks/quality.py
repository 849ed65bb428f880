"""Quality on monitoring footage with ground truth: what each compression method keeps of what happened.

Scenes come from benchmarks.scenes (real H.264 + AAC files, truth from the clean pixels). Each method is
built as the service builds it (services.models.model_setup of its settings) and each scene goes the
service's way: the file decoded into clip windows (pipeline.ingest.sources), encode_windows ->
compress_batch -> record_for_window with the camera's noise floor from the store -> a real store (the
embedded redis-server). The timeline is then read over the REST API (the FastAPI app over the real
Gateway, in-process). Measures (docs/architecture.md, "Quality benchmark"):

- changed-cell recall: per token-frame, kept truly changed cells / min(changed cells, the tokens the
  fixed preset allows a frame), summed per scene;
- sound-token recall: audio tokens inside sound events kept / all audio tokens inside sound events, for
  sounds on screen (a visible event coincides) and off screen;
- tokens kept per quiet clip (no event in it) and per camera-hour;
- timeline: event recall and precision from GET /v1/events (1 s tolerance: events are whole 2 s chunks),
  and precision in time (the share of reported event seconds within 1 s of a true event),
  time grounding (a question at each event's time gets evidence covering it and an answer naming
  activity over it), and invented events in quiet ranges (no event within 3 s).

Run: omnisift bench quality [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.quality_metrics import (
    Ratio,
    activity_spans,
    audio_token_spans,
    changed_cell_recall,
    is_quiet,
    kept_cells,
    match_events,
    overlaps,
    quiet_ranges,
    seconds_on_truth,
    sound_token_recall,
    tokens_inside,
)
from benchmarks.scenes import Scene, benchmark_scenes, write_scene
from omnisift_core.backbone import load_encoder
from omnisift_core.budget import kept_count
from omnisift_core.layout import AUDIO_TOKENS_PER_SECOND
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.encoder_input import encode_windows
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.scoring import record_for_window
from pipeline.ingest.sources import ClipSource, SourceSpec
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.connection import connect
from services.models import ModelSetup, model_setup
from services.settings import Settings, load_settings

# (label, Settings overrides): one row per method; each is measured at every preset below
METHODS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("omnisift", {"compression_method": "omnisift", "compression_profile": "paper"}),
    ("omnisift+novelty", {"compression_method": "omnisift", "video_budget": "novelty"}),
    ("omnisift+monitoring", {"compression_method": "omnisift", "compression_profile": "monitoring"}),
    ("omnizip", {"compression_method": "omnizip"}),
    ("dycoke", {"compression_method": "dycoke"}),
    ("random", {"compression_method": "random"}),
    ("full", {"compression_method": "full"}),
)
PRESETS = ("35%", "25%")
BATCH = 4  # clips encoded together, as the encoder deployment batches them
EVENT_TOLERANCE_S = 1.0
QUIET_MARGIN_S = 3.0
PLOT_PRESET = "25%"
QUICK_OUT = Path(tempfile.gettempdir()) / "omnisift-quality-quick"  # quick runs do not touch the README's figures


@dataclass
class SceneTally:
    """One method at one preset on one scene."""

    cells: Ratio = field(default_factory=Ratio)
    on_screen: Ratio = field(default_factory=Ratio)
    off_screen: Ratio = field(default_factory=Ratio)
    clips: int = 0
    kept_tokens: int = 0
    source_tokens: int = 0
    quiet_clips: int = 0
    quiet_tokens: int = 0
    kept_per_second: dict[int, int] = field(default_factory=dict)  # second of the scene -> kept tokens
    timeline: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "changed_cell_recall": self.cells.value,
            "changed_cells_kept_and_ceiling": [self.cells.hits, self.cells.total],
            "on_screen_sound_recall": self.on_screen.value,
            "off_screen_sound_recall": self.off_screen.value,
            "clips": self.clips,
            "kept_tokens": self.kept_tokens,
            "source_tokens": self.source_tokens,
            "quiet_clips": self.quiet_clips,
            "tokens_per_quiet_clip": self.quiet_tokens / self.quiet_clips if self.quiet_clips else None,
            "timeline": self.timeline,
        }


@dataclass
class Config:
    """A row of METHODS at one preset: its settings, model setup and store."""

    label: str
    preset: str
    settings: Settings
    setup: ModelSetup
    store: AnchorStore
    scenes: dict[str, SceneTally] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.label}@{self.preset}"

    @property
    def activity(self) -> ActivityConfig:
        return self.settings.activity_config()

    def noise_floor(self, window: ClipWindow) -> float | None:
        """The floor the camera's previous stored clip left, as the encoder deployment reads it."""
        previous = self.store.previous_meta(window.camera_id, window.start)
        return None if previous is None else previous.noise_floor_dbfs


def configs(data_dir: Path) -> list[Config]:
    """Every (method, preset), each with its own store namespace on one embedded redis-server."""
    out = []
    for label, overrides in METHODS:
        for preset in PRESETS:
            namespace = f"quality-{label.replace('+', '-')}-{preset.rstrip('%')}"
            settings = load_settings(
                **overrides,
                compression_preset=preset,
                model="tiny",
                device="cpu",
                data_dir=data_dir,
                store_namespace=namespace,
                retention_max_age_hours=None,  # the scenes are dated in the past
                retention_max_bytes=None,
                answer_mode="timeline",
                alert_worker=False,  # the benchmark reads the timeline; no alert rules exist
            )
            setup = model_setup(settings)
            store = AnchorStore.open(connect(settings.redis_config()), setup.fingerprint, settings.store_config())
            out.append(Config(label, preset, settings, setup, store))
    return out


def clip_windows(scene: Scene, settings: Settings) -> Iterator[list[ClipWindow]]:
    """The scene file as ingest cuts it, in batches (pipeline.ingest.sources, as a file job opens it)."""
    spec = SourceSpec(
        camera_id=scene.spec.name,
        url=str(scene.path),
        clip_seconds=settings.clip_seconds,
        fps=settings.fps,
        start_time=scene.spec.start_time,
        max_pixels=settings.max_frame_pixels,
    )
    batch: list[ClipWindow] = []
    for item in ClipSource(spec, MediaPolicy(media_roots=(scene.path.parent,))):
        if isinstance(item, ClipWindow):
            batch.append(item)
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def measure_scene(scene: Scene, rows: Sequence[Config], encoder) -> None:
    """Ingest one scene with every config (one encoding per method row) and tally what each kept."""
    truth = scene.truth
    visible = [(e.start, e.end) for e in truth.events]
    sounds = {flag: [(e.start, e.end) for e in truth.sounds(on_screen=flag)] for flag in (True, False)}
    by_label: dict[str, list[Config]] = {}
    for config in rows:
        by_label.setdefault(config.label, []).append(config)
        config.scenes[scene.spec.name] = SceneTally()
    for windows in clip_windows(scene, rows[0].settings):
        for group in by_label.values():
            first = group[0]  # the preset changes neither the tokens nor the measures
            encoded = encode_windows(encoder, windows, first.setup.compressor, first.noise_floor, first.activity)
            tokens = [e.tokens for e in encoded]
            for config in group:
                compressions = config.setup.compressor.compress_batch(tokens)
                for window, item, compression in zip(windows, encoded, compressions, strict=True):
                    tally_clip(config, scene, window, item.measures, compression, visible, sounds)


def tally_clip(config: Config, scene: Scene, window: ClipWindow, measures, compression, visible, sounds) -> None:
    tally, truth = config.scenes[scene.spec.name], scene.truth
    config.store.put(record_for_window(window, compression, config.setup.fingerprint, measures, config.activity))

    offset = (window.start - scene.spec.start_time).total_seconds()
    grid = compression.kept.grid
    kept = kept_cells(compression.video_keep.numpy(), grid.frames, grid.rows, grid.cols)
    first = round(offset * truth.token_fps)
    changed = truth.changed[first : first + grid.frames]
    allowed = kept_count(grid.tokens_per_frame, config.settings.removal_ratios.video)
    tally.cells.add(*changed_cell_recall(kept[: len(changed)], changed, allowed))

    n_audio = compression.source_counts[1]
    spans = audio_token_spans(n_audio, offset)
    audio_keep = compression.audio_keep.numpy()
    for flag, ratio in ((True, tally.on_screen), (False, tally.off_screen)):
        ratio.add(*sound_token_recall(audio_keep, tokens_inside(spans, sounds[flag])))

    kept_total = sum(compression.kept_counts)
    tally.clips += 1
    tally.kept_tokens += kept_total
    tally.source_tokens += sum(compression.source_counts)
    if is_quiet((offset, offset + window.clip_seconds), visible):
        tally.quiet_clips += 1
        tally.quiet_tokens += kept_total
    frame_seconds = 1 / truth.token_fps
    for f in range(grid.frames):
        second = int(offset + f * frame_seconds)
        tally.kept_per_second[second] = tally.kept_per_second.get(second, 0) + int(kept[f].sum())
    for j in audio_keep:
        second = int(offset + j / AUDIO_TOKENS_PER_SECOND)
        tally.kept_per_second[second] = tally.kept_per_second.get(second, 0) + 1


# ---- the timeline, through the REST API -----------------------------------------------------------------


def measure_timeline(config: Config, scenes: Sequence[Scene]) -> None:
    """Events, grounding and invented events of every scene, asked of the service's REST API."""
    from fastapi.testclient import TestClient  # the app in-process: the real Gateway over the real store

    from services.deployments.gateway import Gateway
    from services.http.app import create_api

    gateway = Gateway(config.settings, ingest=None, answerer=None)  # only queries and events: no ingest calls
    with TestClient(create_api(gateway, config.settings)) as client:
        for scene in scenes:
            config.scenes[scene.spec.name].timeline = scene_timeline(client, scene)


def scene_timeline(client, scene: Scene) -> dict[str, Any]:
    start, camera = scene.spec.start_time, scene.spec.name

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    def seconds(text: str) -> float:
        return (datetime.fromisoformat(text.replace("Z", "+00:00")) - start).total_seconds()

    def clock(text: str) -> float:
        return seconds(f"{start:%Y-%m-%d}T{text}Z")

    def events(lo: float, hi: float) -> list[tuple[float, float]]:
        params = {"camera_id": camera, "start": at(lo).isoformat(), "end": at(hi).isoformat()}
        response = client.get("/v1/events", params=params)
        response.raise_for_status()
        return [(seconds(e["start"]), seconds(e["end"])) for e in response.json()]

    truth = [(e.start, e.end) for e in scene.truth.events]
    reported = events(0.0, scene.spec.duration)
    matching = match_events(truth, reported, EVENT_TOLERANCE_S)
    grounded = 0
    for event in scene.truth.events:
        question = f"what happened at {at(event.start):%H:%M:%S on %Y-%m-%d}?"
        response = client.post("/v1/query", json={"question": question, "cameras": [camera]})
        response.raise_for_status()
        body = response.json()
        evidence = [(seconds(e["start"]), seconds(e["end"])) for e in body["evidence"]]
        said = [(clock(a), clock(b)) for a, b in activity_spans(body["answer"])]
        span = (event.start, event.end)
        grounded += any(overlaps(e, span) for e in evidence) and any(overlaps(a, span, EVENT_TOLERANCE_S) for a in said)
    on_truth, reported_s = seconds_on_truth(truth, reported, EVENT_TOLERANCE_S)
    quiet = quiet_ranges(truth, scene.spec.duration, QUIET_MARGIN_S)
    invented = [len(events(lo, hi)) for lo, hi in quiet]
    return {
        "events": reported,
        "found": matching.found,
        "truth_events": matching.truth,
        "correct": matching.correct,
        "reported": matching.reported,
        "seconds_on_truth": on_truth,
        "reported_seconds": reported_s,
        "grounded": grounded,
        "quiet_ranges": len(quiet),
        "quiet_ranges_with_events": sum(1 for n in invented if n),
        "invented_events": sum(invented),
    }


# ---- results --------------------------------------------------------------------------------------------


def summarise(config: Config, scenes: Sequence[Scene]) -> dict[str, Any]:
    """One row of the table: sums over the scenes, and the worst scene's changed-cell recall."""
    tallies = [config.scenes[s.spec.name] for s in scenes]
    cells, on, off = Ratio(), Ratio(), Ratio()
    for t in tallies:
        cells.add(t.cells.hits, t.cells.total)
        on.add(t.on_screen.hits, t.on_screen.total)
        off.add(t.off_screen.hits, t.off_screen.total)
    dark = Ratio()
    for s in scenes:
        if s.spec.brightness < 0.5:
            t = config.scenes[s.spec.name]
            dark.add(t.on_screen.hits + t.off_screen.hits, t.on_screen.total + t.off_screen.total)
    per_scene = [t.cells.value for t in tallies if t.cells.value is not None]
    quiet = sum(t.quiet_clips for t in tallies)
    hours = sum(s.spec.duration for s in scenes) / 3600
    lines = [t.timeline for t in tallies]
    found, truth = sum(t["found"] for t in lines), sum(t["truth_events"] for t in lines)
    correct, reported = sum(t["correct"] for t in lines), sum(t["reported"] for t in lines)
    on_s, reported_s = sum(t["seconds_on_truth"] for t in lines), sum(t["reported_seconds"] for t in lines)
    return {
        "method": config.label,
        "preset": config.preset,
        "changed_cell_recall": cells.value,
        "changed_cell_recall_worst_scene": min(per_scene, default=None),
        "on_screen_sound_recall": on.value,
        "off_screen_sound_recall": off.value,
        "dark_scene_sound_recall": dark.value,
        "tokens_per_quiet_clip": sum(t.quiet_tokens for t in tallies) / quiet if quiet else None,
        "tokens_per_camera_hour": sum(t.kept_tokens for t in tallies) / hours,
        "kept_share": sum(t.kept_tokens for t in tallies) / max(1, sum(t.source_tokens for t in tallies)),
        "event_recall": found / truth if truth else None,
        "event_precision": correct / reported if reported else None,
        "event_time_precision": on_s / reported_s if reported_s else None,
        "grounded": sum(t["grounded"] for t in lines) / truth if truth else None,
        "quiet_ranges_with_events": f"{sum(t['quiet_ranges_with_events'] for t in lines)}/"
        f"{sum(t['quiet_ranges'] for t in lines)}",
        "invented_events": sum(t["invented_events"] for t in lines),
        "scenes": {s.spec.name: config.scenes[s.spec.name].to_json() for s in scenes},
    }


COLUMNS = (
    "method",
    "preset",
    "changed-cell recall (all / worst scene)",
    "sound recall on / off screen",
    "sound recall, dark scene",
    "tokens per quiet clip",
    "tokens per camera-hour",
    "event recall / precision / time precision",
    "grounded",
    "quiet ranges with an invented event",
)


def _num(value: float | None, form: str = "{:.2f}") -> str:
    return "-" if value is None else form.format(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [
            r["method"],
            r["preset"],
            f"{_num(r['changed_cell_recall'])} / {_num(r['changed_cell_recall_worst_scene'])}",
            f"{_num(r['on_screen_sound_recall'])} / {_num(r['off_screen_sound_recall'])}",
            _num(r["dark_scene_sound_recall"]),
            _num(r["tokens_per_quiet_clip"], "{:.0f}"),
            _num(r["tokens_per_camera_hour"], "{:,.0f}"),
            f"{_num(r['event_recall'])} / {_num(r['event_precision'])} / {_num(r['event_time_precision'])}",
            _num(r["grounded"]),
            r["quiet_ranges_with_events"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scene_table(rows: Sequence[dict[str, Any]]) -> str:
    """Changed-cell recall per scene (targets are set per scene)."""
    names = list(rows[0]["scenes"])
    lines = ["| method | preset | " + " | ".join(names) + " |", "|" + "---|" * (2 + len(names))]
    for r in rows:
        cells = [_num(r["scenes"][n]["changed_cell_recall"]) for n in names]
        lines.append(f"| {r['method']} | {r['preset']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], configs_: Sequence[Config], scenes: Sequence[Scene], out: Path) -> list[Path]:
    """recall-vs-tokens.png (every method and preset) and timeline-<scene>.png per scene (kept tokens over
    time, the truth and the service's timeline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recall_path = out / "quality-recall-vs-tokens.png"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, _ in METHODS:
        mine = [r for r in rows if r["method"] == label]
        x = [r["kept_share"] * 100 for r in mine]
        for ax, key, title in (
            (axes[0], "changed_cell_recall", "changed-cell recall (of the preset's ceiling)"),
            (axes[1], "off_screen_sound_recall", "off-screen sound-token recall"),
        ):
            y = [r[key] or 0.0 for r in mine]
            ax.plot(x, y, marker="o", label=label)
            for xi, yi, r in zip(x, y, mine, strict=True):
                ax.annotate(r["preset"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("tokens kept (% of all, over every scene)")
            ax.set_ylim(0, 1.05)
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(recall_path, dpi=110)
    plt.close(fig)

    return [recall_path, *(plot_timeline(configs_, scene, out, plt) for scene in scenes)]


def binned(per_second: np.ndarray, bin_s: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin starts, mean per second in each bin)."""
    n = len(per_second) // bin_s * bin_s
    return np.arange(0, n, bin_s), per_second[:n].reshape(-1, bin_s).mean(axis=1)


def plot_timeline(configs_: Sequence[Config], scene: Scene, out: Path, plt) -> Path:
    timeline_path = out / f"quality-timeline-{scene.spec.name}.png"
    fig, ax = plt.subplots(figsize=(11, 4))
    name = scene.spec.name
    bin_s = max(1, int(scene.spec.duration) // 120)  # a long scene is drawn as means over bins
    for config in configs_:
        if config.preset != PLOT_PRESET or config.label == "full":  # full keeps every token: off the scale
            continue
        series = config.scenes[name].kept_per_second
        per_second = np.array([series.get(s, 0) for s in range(int(scene.spec.duration))], float)
        ax.plot(*binned(per_second, bin_s), label=config.label, lw=1)
    for event in scene.truth.events:
        color = "tab:red" if not event.is_sound else ("tab:green" if event.on_screen else "tab:purple")
        ax.axvspan(event.start, max(event.end, event.start + 0.3), color=color, alpha=0.2)
    omnisift = next(c for c in configs_ if c.label == "omnisift" and c.preset == PLOT_PRESET)
    for lo, hi in omnisift.scenes[name].timeline["events"]:
        ax.plot([lo, hi], [-8, -8], color="black", lw=4, solid_capstyle="butt")
    ax.set_title(
        f"{name} at {PLOT_PRESET}: kept tokens per second; shaded: truth (red visual, green sound on screen, "
        "purple off screen); black: omnisift's timeline events",
        fontsize=9,
    )
    ax.set_xlabel("seconds")
    ax.set_ylabel("tokens kept per second" + (f" ({bin_s} s means)" if bin_s > 1 else ""))
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(timeline_path, dpi=110)
    plt.close(fig)
    return timeline_path


def scene_json(scene: Scene) -> dict[str, Any]:
    spec = scene.spec
    return {
        **scene.truth.to_json(),
        "file": {"fps": spec.fps, "size": [spec.width, spec.height], "crf": spec.crf, "keyframe_s": spec.keyframe_s},
        "noise_sigma": spec.noise_sigma,
        "brightness": spec.brightness,
    }


def run(quick: bool, out: Path, work: Path) -> dict[str, Any]:
    """Generate the scenes, measure every config, write quality.json, quality.md and the plots to `out`."""
    began = time.monotonic()
    scenes_dir = work / "scenes"
    scenes_dir.mkdir(parents=True, exist_ok=True)
    scenes = [write_scene(spec, scenes_dir) for spec in benchmark_scenes(quick)]
    print(f"scenes written to {scenes_dir} ({time.monotonic() - began:.0f} s)", flush=True)
    rows_ = configs(work / "data")
    first = rows_[0]
    encoder = load_encoder(first.setup.checkpoint, first.setup.device, first.settings.frame_limits())
    with torch.inference_mode():
        for scene in scenes:
            measure_scene(scene, rows_, encoder)
            print(f"measured {scene.spec.name} ({time.monotonic() - began:.0f} s)", flush=True)
    for config in rows_:
        measure_timeline(config, scenes)
    rows = [summarise(c, scenes) for c in rows_]
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "mode": "quick" if quick else "full",
        "command": "omnisift bench quality" + (" --quick" if quick else ""),
        "scenes": [scene_json(s) for s in scenes],
        "methods": rows,
        "seconds": round(time.monotonic() - began, 1),
    }
    (out / "quality.json").write_text(json.dumps(result, indent=2))
    table = f"{markdown_table(rows)}\n\nChanged-cell recall per scene:\n\n{scene_table(rows)}"
    (out / "quality.md").write_text(table + "\n")
    plots = plot(rows, rows_, (scenes[0], scenes[-1]), out)
    print(table)
    print(f"wrote {out / 'quality.json'}, {out / 'quality.md'}, " + ", ".join(str(p) for p in plots))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short scenes and a 1-minute static one (CI)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output directory (default: docs/figures, with --quick {QUICK_OUT})",
    )
    args = parser.parse_args()
    out = args.out or (QUICK_OUT if args.quick else Path(__file__).resolve().parents[1] / "docs" / "figures")
    with tempfile.TemporaryDirectory(prefix="omnisift-quality-") as tmp:
        run(args.quick, out, Path(tmp))


if __name__ == "__main__":
    main()
