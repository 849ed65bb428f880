"""The OmniSIFT selector weights of a checkpoint (`thinker.compressor.*`), when it has them."""

from __future__ import annotations

import torch

from omnisift_core.backbone.checkpoint import Checkpoint, default_device, load_module_weights
from omnisift_core.vgas import VisionGuidedAudioSelector


def load_selector(checkpoint: Checkpoint, device: torch.device | None = None) -> VisionGuidedAudioSelector | None:
    """The trained selector, or None when the checkpoint has no compressor weights (stock Qwen2.5-Omni, tiny)."""
    weights = {key.removeprefix("compressor."): value for key, value in checkpoint.weights(("compressor.",)).items()}
    if not weights:
        return None
    selector = VisionGuidedAudioSelector(checkpoint.config.text_config.hidden_size)
    load_module_weights(selector, weights, "OmniSIFT selector")
    return selector.to(device or default_device()).eval()
