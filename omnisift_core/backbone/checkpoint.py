"""Where a backbone comes from: a local checkpoint directory or the `tiny` preset. Nothing is downloaded.

Weights are addressed by canonical thinker keys (transformers 5.x module names): `model.visual.*`,
`model.audio_tower.*`, `model.language_model.*`, `lm_head.*`, and `compressor.*` for the OmniSIFT selector.
Published checkpoints (Qwen2.5-Omni-3B/7B, OmniSIFT-7B) store `thinker.visual.*`, `thinker.audio_tower.*`,
`thinker.model.*` (the language model), `thinker.lm_head.*` and `thinker.compressor.*`; both layouts load.
The talker and token2wav weights are never read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase, Qwen2_5OmniThinkerConfig

from omnisift_core.backbone.tiny import tiny_thinker, tiny_thinker_config, tiny_tokenizer
from omnisift_core.errors import ModelUnavailable

TINY = "tiny"
_LANGUAGE_MODEL = re.compile(r"^model\.(?!language_model\.|visual\.|audio_tower\.)")


@dataclass(frozen=True)
class ModelSource:
    """`tiny` (optionally `tiny:<seed>`) or the path of a local checkpoint directory."""

    path: Path | None
    seed: int = 0

    @classmethod
    def parse(cls, value: str | Path) -> ModelSource:
        text = str(value).strip()
        if text == TINY or text.startswith(f"{TINY}:"):
            seed = text.partition(":")[2]
            if seed and not seed.isdigit():
                raise ModelUnavailable(f"tiny model seed must be a whole number, got {seed!r}")
            return cls(path=None, seed=int(seed or 0))
        return cls(path=Path(text).expanduser())

    @property
    def is_tiny(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        return f"{TINY}:{self.seed}" if self.is_tiny else str(self.path)


def canonical_key(key: str) -> str | None:
    """A checkpoint key in canonical thinker naming, or None for weights we never load."""
    if key.startswith("thinker."):
        key = key[len("thinker.") :]
    elif key.startswith(("talker.", "token2wav.")):
        return None
    if key.startswith(("visual.", "audio_tower.")):
        return f"model.{key}"
    if _LANGUAGE_MODEL.match(key):
        return _LANGUAGE_MODEL.sub("model.language_model.", key)
    if key.startswith(("model.", "lm_head.", "compressor.")):
        return key
    return None


class Checkpoint:
    """Config, tokenizer and (selectively) weights of one model source."""

    def __init__(self, source: ModelSource):
        self.source = source
        if not source.is_tiny:
            self._check_directory(source.path)

    @cached_property
    def config(self) -> Qwen2_5OmniThinkerConfig:
        if self.source.is_tiny:
            return tiny_thinker_config()
        try:
            config = AutoConfig.from_pretrained(self.source.path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelUnavailable(f"cannot read config.json in {self.source.path}: {error}") from error
        config = getattr(config, "thinker_config", config)
        if not isinstance(config, Qwen2_5OmniThinkerConfig):
            raise ModelUnavailable(
                f"{self.source.path} is not a Qwen2.5-Omni checkpoint (model_type {config.model_type!r})"
            )
        return config

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        if self.source.is_tiny:
            return tiny_tokenizer()
        try:
            return AutoTokenizer.from_pretrained(self.source.path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelUnavailable(f"cannot load the tokenizer in {self.source.path}: {error}") from error

    @cached_property
    def fingerprint(self) -> str:
        """Identifies the weights; tokens encoded by another model must never be mixed with these."""
        if self.source.is_tiny:
            return f"qwen2.5-omni-tiny:seed={self.source.seed}"
        digest = hashlib.sha256((self.source.path / "config.json").read_bytes())
        for file in self._weight_files():
            digest.update(f"{file.name}:{file.stat().st_size}".encode())
        return f"{self.source.path.name}:{digest.hexdigest()[:16]}"

    def weights(self, prefixes: tuple[str, ...]) -> dict[str, Tensor]:
        """Canonical-keyed tensors whose key starts with one of `prefixes`."""
        if self.source.is_tiny:
            state = tiny_thinker(self.source.seed).state_dict()
            return {k: v for k, v in state.items() if k.startswith(prefixes)}
        return read_weights(self._weight_files(), prefixes)

    def _weight_files(self) -> list[Path]:
        files = sorted(self.source.path.glob("*.safetensors"))
        if not files:
            raise ModelUnavailable(f"no *.safetensors weights in {self.source.path}")
        return files

    @staticmethod
    def _check_directory(path: Path) -> None:
        if not path.is_dir():
            raise ModelUnavailable(
                f"model directory {path} does not exist; point the model setting at a local Qwen2.5-Omni "
                f"or OmniSIFT checkpoint, or use '{TINY}' (nothing is downloaded)"
            )
        if not (path / "config.json").is_file():
            raise ModelUnavailable(f"{path} has no config.json; is it a Hugging Face checkpoint directory?")
        index = path / "model.safetensors.index.json"
        if index.is_file():
            missing = sorted(
                {f for f in json.loads(index.read_text())["weight_map"].values() if not (path / f).is_file()}
            )
            if missing:
                raise ModelUnavailable(f"{path} is incomplete: missing weight files {', '.join(missing)}")


def read_weights(files: list[Path], prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """Canonical-keyed tensors of safetensors `files` whose key starts with one of `prefixes` (only those are read)."""
    selected: dict[str, Tensor] = {}
    for file in files:
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open handles are not iterable)
                name = canonical_key(key)
                if name is not None and name.startswith(prefixes):
                    selected[name] = handle.get_tensor(key)
    return selected


def load_module_weights(module: torch.nn.Module, weights: dict[str, Tensor], what: str) -> None:
    """Load exactly the module's parameters, or say which are missing."""
    expected = set(module.state_dict())
    missing = sorted(expected - set(weights))
    if missing:
        raise ModelUnavailable(
            f"checkpoint is incomplete for the {what}: {len(missing)} weights missing, e.g. {', '.join(missing[:3])}"
        )
    module.load_state_dict({k: weights[k] for k in expected}, strict=True)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPU, fp32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32
