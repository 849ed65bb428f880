"""Model pieces the deployments share: device choice, the compressor, and the store fingerprint they agree on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omnisift_core.backbone import Checkpoint, ModelSource, load_selector
from omnisift_core.baselines import build_compressor
from omnisift_core.compressor import TokenCompressor
from services.settings import Settings


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device is set to cuda but no CUDA device is visible to this worker")
    return torch.device(setting)


def use_cpu_threads(num_cpus: float) -> None:
    """Keep torch within the CPUs Ray granted this replica, so replicas on one machine do not oversubscribe."""
    torch.set_num_threads(max(1, int(num_cpus)))


@dataclass(frozen=True)
class ModelSetup:
    checkpoint: Checkpoint
    compressor: TokenCompressor
    device: torch.device

    @property
    def fingerprint(self) -> str:
        """Model + compressor: stored tokens are only ever read back by the same pair."""
        return f"{self.checkpoint.fingerprint}|{self.compressor.fingerprint}"


def model_setup(settings: Settings) -> ModelSetup:
    """The checkpoint and the configured compressor, with a trained selector when there is one
    (the `selector_weights` file, else the checkpoint's own)."""
    device = resolve_device(settings.device)
    checkpoint = Checkpoint(ModelSource.parse(settings.model))
    hidden = checkpoint.config.text_config.hidden_size
    selector = None
    if settings.compression_method == "omnisift":
        selector = load_selector(checkpoint, device, settings.selector_weights)
    compressor = build_compressor(
        settings.compression_method,
        settings.removal_ratios,
        hidden,
        selector,
        novelty=settings.novelty_budget(),
        monitoring=settings.monitoring_budget(),
    )
    return ModelSetup(checkpoint, compressor, device)
