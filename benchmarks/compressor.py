"""Compressor cost on CPU at Qwen2.5-Omni-7B sizes: one 10-second clip, every method side by side.

Run: .venv/bin/python -m benchmarks.compressor [--preset 25%] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from omnisift_core.baselines import build_compressor
from omnisift_core.config import PRESETS
from omnisift_core.layout import VideoGrid
from omnisift_core.tokens import build_clip_tokens
from omnisift_core.vgas import VisionGuidedAudioSelector

HIDDEN_7B = 3584


def seven_b_clip(seed: int = 0):
    """10 s at 2 fps: 10 LLM frames of 16x20 = 320 tokens, 250 audio tokens, D = 3584."""
    generator = torch.Generator().manual_seed(seed)
    grid = VideoGrid(frames=10, rows=16, cols=20)
    return build_clip_tokens(
        torch.randn(grid.num_tokens, HIDDEN_7B, generator=generator),
        grid,
        torch.randn(250, HIDDEN_7B, generator=generator),
    )


def time_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="25%", choices=sorted(PRESETS))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    ratios = PRESETS[args.preset]
    clip = seven_b_clip()
    selector = VisionGuidedAudioSelector(HIDDEN_7B).eval()
    methods = {
        "omnisift (selector)": build_compressor("omnisift", ratios, HIDDEN_7B, selector),
        "omnisift (training-free)": build_compressor("omnisift", ratios, HIDDEN_7B),
        "omnizip": build_compressor("omnizip", ratios, HIDDEN_7B),
        "dycoke": build_compressor("dycoke", ratios, HIDDEN_7B),
        "random": build_compressor("random", ratios, HIDDEN_7B),
    }
    total = len(clip.video) + len(clip.audio)
    print(f"clip: {len(clip.video)} video + {len(clip.audio)} audio tokens, D = {HIDDEN_7B}, preset {args.preset}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"selector parameters: {sum(p.numel() for p in selector.parameters()):,}")
    print(f"{'method':26} {'ms/clip':>9} {'video kept':>11} {'audio kept':>11} {'kept %':>7}")
    with torch.inference_mode():
        for name, compressor in methods.items():
            ms = time_ms(lambda c=compressor: c.compress(clip), args.repeats)
            kept_v, kept_a = compressor.compress(clip).kept_counts
            print(f"{name:26} {ms:9.1f} {kept_v:11d} {kept_a:11d} {100 * (kept_v + kept_a) / total:6.1f}%")


if __name__ == "__main__":
    main()
