"""The OmniSIFT selector weights (`thinker.compressor.*`): from the checkpoint, or from a trained file."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError

from omnisift_core.backbone.checkpoint import Checkpoint, default_device, load_module_weights, read_weights
from omnisift_core.errors import ModelUnavailable
from omnisift_core.vgas import VisionGuidedAudioSelector


def load_selector(
    checkpoint: Checkpoint, device: torch.device | None = None, weights_file: Path | None = None
) -> VisionGuidedAudioSelector | None:
    """The trained selector, or None when there is none (stock Qwen2.5-Omni or tiny, and no file).

    `weights_file` (as written by `omnisift_core.train.save_selector`) wins over the checkpoint's own.
    """
    weights = _file_weights(weights_file) if weights_file is not None else checkpoint.weights(("compressor.",))
    weights = {key.removeprefix("compressor."): value for key, value in weights.items()}
    if not weights:
        return None
    hidden = checkpoint.config.text_config.hidden_size
    selector = VisionGuidedAudioSelector(hidden)
    if weights_file is not None and weights.get("v_proj.weight", torch.empty(0, hidden)).shape[1] != hidden:
        raise ModelUnavailable(f"selector weights in {weights_file} are for another model size (not hidden {hidden})")
    try:
        load_module_weights(selector, weights, "OmniSIFT selector")
    except ModelUnavailable:
        raise
    except RuntimeError as error:  # shapes of another selector configuration
        source = weights_file or checkpoint.source
        raise ModelUnavailable(f"selector weights in {source} do not fit this selector: {error}") from None
    return selector.to(device or default_device()).eval()


def _file_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        weights = read_weights([path], ("compressor.",))
    except (OSError, SafetensorError) as error:
        raise ModelUnavailable(f"cannot read selector weights {path}: {error}") from error
    if not weights:
        raise ModelUnavailable(f"{path} holds no selector weights (keys thinker.compressor.*)")
    return weights
