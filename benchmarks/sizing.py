"""Sizing: how many cameras one encoder replica keeps up with, and how fast one answerer replica answers,
at the tiny, Qwen2.5-Omni-3B and -7B sizes (random weights, the published dimensions), on this machine's
device (CUDA when present, else CPU).

Encoder replica: one clip of --clip-seconds at 2 fps, 640x360 frames (the paper's 320 tokens per frame) and
16 kHz audio, through the vision and audio towers and OmniSIFT at 25%, as EncoderCompressor does; median of
--repeats after a warm-up. Both towers cost time in proportion to the frames and samples of a clip, so the
time of a 10-second clip is the measured one times 10 / --clip-seconds (on a CPU the default measures
2-second clips: "frame-limited"). A replica keeps up with 10 s / (seconds per 10-second clip) cameras.

Answerer replica: a question over one minute of one camera (6 clips of kept tokens at 25%, their headers)
with 16 generated tokens. On a CPU the 3B and 7B language models are measured with --llm-layers of their
layers and scaled by layers / --llm-layers (layer-limited: embeddings and the output head are not
scaled, so the figure leans high); with CUDA every layer runs.

Run: .venv/bin/python -m benchmarks.sizing [--sizes tiny,3B,7B] [--clip-seconds 2] [--llm-layers 2]
A GPU owner runs: python -m benchmarks.sizing --clip-seconds 10 --llm-layers 0   (0: every layer)
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from transformers import Qwen2_5OmniThinkerConfig

from omnisift_core.backbone import ClipMedia
from omnisift_core.backbone.encoder import OmniEncoder
from omnisift_core.backbone.language import LanguageHalf, OmniLanguageModel
from omnisift_core.backbone.prompt import ClipContext, SpecialIds
from omnisift_core.backbone.tiny import tiny_thinker_config, tiny_tokenizer
from omnisift_core.baselines import build_compressor
from omnisift_core.config import PRESETS, FrameLimits

CLIP_S = 10
FPS = 2.0
SAMPLE_RATE = 16_000
CLIPS_PER_QUESTION = 6  # one minute of one camera
NEW_TOKENS = 16

# Qwen2.5-Omni's published thinker dimensions (vision and audio towers are the same at both sizes).
TOWERS = {
    "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                      "fullatt_block_indexes": [7, 15, 23, 31]},
    "audio_config": {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120},
}  # fmt: skip
TEXT = {
    "3B": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
           "num_key_value_heads": 2, "vocab_size": 151936},
    "7B": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "vocab_size": 152064},
}  # fmt: skip


def thinker_config(size: str, text_layers: int | None = None) -> Qwen2_5OmniThinkerConfig:
    """The tiny config, or one with the published dimensions of `size` (text layers limited if asked)."""
    if size == "tiny":
        return tiny_thinker_config()
    parts = tiny_thinker_config().to_dict()
    hidden = TEXT[size]["hidden_size"]
    vision = parts["vision_config"] | TOWERS["vision_config"] | {"out_hidden_size": hidden}
    audio = parts["audio_config"] | TOWERS["audio_config"] | {"output_dim": hidden}
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}
    text = parts["text_config"] | TEXT[size] | {"rope_parameters": rope}
    text.pop("layer_types", None)  # derived from the layer count
    if text_layers:
        text["num_hidden_layers"] = text_layers
    return Qwen2_5OmniThinkerConfig(audio_config=audio, vision_config=vision, text_config=text)


@dataclass(frozen=True)
class Sizing:
    size: str
    encode_s: float  # per 10-second clip
    answer_s: float  # per one-minute question

    @property
    def cameras_per_encoder(self) -> float:
        return CLIP_S / self.encode_s

    @property
    def questions_per_minute(self) -> float:
        return 60 / self.answer_s


def median_seconds(work, repeats: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(size: str, device: torch.device, clip_s: float, llm_layers: int, repeats: int) -> Sizing:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    config = thinker_config(size)
    encoder = OmniEncoder(config, FrameLimits()).to(device=device, dtype=dtype).eval()
    compressor = build_compressor("omnisift", PRESETS["25%"], config.text_config.hidden_size)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (round(clip_s * FPS), 360, 640, 3), dtype=np.uint8)
    media = ClipMedia(frames, (rng.standard_normal(round(clip_s * SAMPLE_RATE)) * 0.1).astype(np.float32), FPS)

    def encode():
        with torch.inference_mode():
            return compressor.compress_batch(encoder.encode_batch([media]))

    kept = encode()[0]  # what the answerer's prompt holds; also the warm-up
    encode_s = median_seconds(encode, repeats) * CLIP_S / clip_s

    full_layers = config.text_config.num_hidden_layers
    layers = full_layers if device.type == "cuda" or not llm_layers or size == "tiny" else min(llm_layers, full_layers)
    language_config = thinker_config(size, text_layers=layers)
    tokenizer = tiny_tokenizer()
    model = OmniLanguageModel(language_config).to(device=device, dtype=dtype).eval()
    language = LanguageHalf(model, tokenizer, SpecialIds.resolve(tokenizer, language_config))
    clips = [ClipContext(f"[cam, 14:0{i}:00-14:0{i}:10]", kept.kept, sum(kept.source_counts)) for i in range(6)]

    def answer():
        return list(language.generate_ids(language.prompt("What happened?", clips), NEW_TOKENS))

    answer_s = median_seconds(answer, max(1, repeats // 2)) * full_layers / layers
    return Sizing(size, encode_s, answer_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,3B,7B")
    parser.add_argument("--clip-seconds", type=float, default=None, help="measured clip length (CPU: 2, GPU: 10)")
    parser.add_argument("--llm-layers", type=int, default=2, help="language layers run on a CPU (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clip_s = args.clip_seconds or (CLIP_S if device.type == "cuda" else 2.0)
    print(f"device {device}, torch threads {torch.get_num_threads()}, clips measured at {clip_s:g} s")
    print(f"{'size':<6}{'encode s / 10-s clip':>22}{'cameras / encoder':>19}{'s / question':>14}{'questions/min':>15}")
    for size in args.sizes.split(","):
        s = measure(size, device, clip_s, args.llm_layers, args.repeats)
        row = f"{s.encode_s:>22.2f}{s.cameras_per_encoder:>19.3g}{s.answer_s:>14.2f}{s.questions_per_minute:>15.3g}"
        print(f"{size:<6}{row}", flush=True)


if __name__ == "__main__":
    main()
