"""Prefill time of the language half over one 10-second clip: full tokens vs OmniSIFT 35% vs 25%, side by side.

Clip: 20 frames at 448x252 (10 LLM frames of 9x16 = 144 tokens) + 250 audio tokens, as Qwen2.5-Omni
encodes them (--size 640x360 gives the paper's 320-token frames). Language model: random weights,
mid-size (hidden 1024, 8 layers), on CPU. Text is byte-level in the tiny tokenizer (~260 tokens of it).
Run: .venv/bin/python -m benchmarks.prefill [--repeats 5] [--layers 8] [--hidden 1024] [--size 640x360]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from omnisift_core.backbone.language import LanguageHalf, OmniLanguageModel
from omnisift_core.backbone.prompt import ClipContext, SpecialIds
from omnisift_core.backbone.tiny import tiny_thinker_config, tiny_tokenizer
from omnisift_core.baselines import build_compressor
from omnisift_core.config import PRESETS
from omnisift_core.layout import VideoGrid
from omnisift_core.media import smart_resize
from omnisift_core.tokens import build_clip_tokens


def mid_size_language(hidden: int, layers: int) -> LanguageHalf:
    config = tiny_thinker_config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        intermediate_size=hidden * 11 // 4,
        num_attention_heads=hidden // 64,
        num_key_value_heads=max(hidden // 256, 1),
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [8, 12, 12]},
    )
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    return LanguageHalf(OmniLanguageModel(config).eval(), tokenizer, SpecialIds.resolve(tokenizer, config))


def time_prefill(language: LanguageHalf, context: ClipContext, repeats: int) -> tuple[float, int]:
    prompt = language.prompt("What happened in this clip?", [context])
    language.prefill(prompt)  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        language.prefill(prompt)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, len(prompt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--size", default="448x252", help="frame size WxH before Qwen's resize (640x360: paper cap)")
    args = parser.parse_args()

    frame_width, frame_height = (int(v) for v in args.size.split("x"))
    height, width = smart_resize(frame_height, frame_width, 128 * 28 * 28, 320 * 28 * 28)
    grid = VideoGrid(frames=10, rows=height // 28, cols=width // 28)
    generator = torch.Generator().manual_seed(0)
    clip = build_clip_tokens(
        torch.randn(grid.num_tokens, args.hidden, generator=generator),
        grid,
        torch.randn(250, args.hidden, generator=generator),
    )
    language = mid_size_language(args.hidden, args.layers)
    full = len(clip.video) + len(clip.audio)
    params = sum(p.numel() for p in language.model.parameters())
    print(
        f"clip: {grid.frames} frames x {grid.rows}x{grid.cols} tokens + {len(clip.audio)} audio = {full} media tokens"
    )
    print(
        f"language model: {params / 1e6:.0f}M random parameters, hidden {args.hidden}, {args.layers} layers, CPU, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'kept':>6} {'prompt tokens':>14} {'prefill ms':>11} {'speed-up':>9}")
    baseline_ms = None
    for preset in ("100%", "35%", "25%"):
        kept = build_compressor("omnisift", PRESETS[preset], args.hidden).compress(clip).kept
        ms, tokens = time_prefill(language, ClipContext("[lobby, 14:03:00-14:03:10]", kept, full), args.repeats)
        baseline_ms = baseline_ms or ms
        print(f"{preset:>6} {tokens:14d} {ms:11.1f} {baseline_ms / ms:8.2f}x")


if __name__ == "__main__":
    main()
