"""Qwen2.5-Omni adapter: load (local checkpoint or tiny preset), encode media, prompt over kept tokens, answer."""

from omnisift_core.backbone.checkpoint import Checkpoint, ModelSource
from omnisift_core.backbone.encoder import ClipMedia, OmniEncoder, load_encoder
from omnisift_core.backbone.language import Answer, LanguageHalf, Usage, load_language
from omnisift_core.backbone.prompt import ClipContext, Prompt
from omnisift_core.backbone.selector import load_selector

__all__ = [
    "Answer",
    "Checkpoint",
    "ClipContext",
    "ClipMedia",
    "LanguageHalf",
    "ModelSource",
    "OmniEncoder",
    "Prompt",
    "Usage",
    "load_encoder",
    "load_language",
    "load_selector",
]
