"""One settings object for the CLI, the deployments and docker-compose: environment, then a YAML file, then defaults.

It and the config types it builds are torch-free, so client commands load without the model stack.

Environment variables are `OMNISIFT_<FIELD>` (nested: `OMNISIFT_ENCODER__NUM_GPUS=1`), plus the standard
`REDIS_URL` and `RAY_ADDRESS`. A YAML file named by `OMNISIFT_CONFIG` (or `--config`) holds the same fields.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from omnisift_core.config import PRESETS, ChangeTest, FrameLimits, MonitoringBudget, NoveltyBudget, RemovalRatios
from omnisift_core.errors import InvalidConfig
from pipeline.activity import ActivityConfig
from pipeline.address_policy import DEFAULT_DENY_CIDRS, DEFAULT_DENY_HOSTS, AddressPolicy, parse_networks
from pipeline.alerts.config import SCHEMES, Backoff, DeliveryConfig
from pipeline.identifiers import is_timezone_name
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.query.planner import PlannerConfig
from pipeline.store.config import RetentionPolicy, StoreConfig
from pipeline.store.connection import RedisConfig
from pipeline.store.secrets import SecretBox, secret_box
from pipeline.store.tier_config import ThinningPolicy, TierConfig


class DeploymentOptions(BaseModel):
    """Ray Serve resources of one deployment."""

    num_replicas: int = Field(1, ge=1)
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    max_replicas_per_node: int | None = Field(None, ge=1)  # 1 spreads the replicas over nodes
    resources: dict[str, float] = {}  # Ray custom resources a replica needs, e.g. {"gpu-node": 1} to pin it


class EncoderOptions(DeploymentOptions):
    max_batch_size: int = Field(4, ge=1)  # clips from different cameras encoded together
    batch_wait_s: float = Field(0.05, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISIFT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        validate_by_name=True,  # Settings(config_file=...) as well as the OMNISIFT_CONFIG alias
    )

    # model and compression
    model: str = "tiny"  # "tiny" or a local Qwen2.5-Omni / OmniSIFT checkpoint directory
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compression_method: Literal["omnisift", "omnizip", "dycoke", "random", "full"] = "omnisift"
    compression_preset: Literal["100%", "35%", "25%"] = "25%"
    # paper: the preset's fixed ratios on every clip; monitoring: tokens follow measured change and sound
    # within the preset's total (docs/architecture.md, "The monitoring profile"). Unset: monitoring for
    # omnisift with the fixed video budget (the quality benchmark's choice), paper for everything else.
    compression_profile: Literal["paper", "monitoring"] | None = None
    video_budget: Literal["fixed", "novelty"] = "fixed"  # novelty: still chunks keep novelty_still_keep of it
    novelty_still_keep: float = Field(0.1, gt=0, le=1)
    selector_weights: Path | None = None  # a selector file from `omnisift train`, over the checkpoint's own
    max_frame_pixels: int = Field(320 * 28 * 28, ge=28 * 28)  # the paper's per-frame cap
    min_frame_pixels: int = Field(128 * 28 * 28, ge=28 * 28)

    # storage
    redis_url: SecretStr | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "OMNISIFT_REDIS_URL"))
    data_dir: Path = Path.home() / ".omnisift"
    store_namespace: str = "omnisift"
    store_encoding: Literal["float16", "int8"] = "float16"
    retention_max_age_hours: float | None = Field(24.0 * 7, gt=0)
    retention_max_bytes: int | None = Field(2 << 30, gt=0)
    cold_dir: Path | None = None  # the cold tier's segment files; default data_dir/cold
    hot_tier_bytes: int | None = Field(None, gt=0)  # what clips may hold in Redis (all cameras); None: all stays hot
    thinning_budget_bytes: int | None = Field(None, gt=0)  # per camera, token bytes before older clips are thinned
    thinning_keep_share: float = Field(0.25, gt=0, lt=1)  # a thinned clip keeps this share of its tokens

    # ingest
    clip_seconds: int = Field(10, ge=2, le=30, multiple_of=2)
    fps: float = Field(2.0, gt=0, le=8)
    media_roots: list[Path] = []  # local files the API may name (uploads are always allowed)
    max_upload_bytes: int = Field(4 << 30, ge=1)
    max_duration_hours: float = Field(24.0, gt=0)
    camera_queue_clips: int = Field(2, ge=1)  # clips buffered per camera before live clips are dropped as gaps
    max_cameras: int = Field(64, ge=1, le=10_000)  # streams this service takes; more are refused (409)
    ingest_lease_s: float = Field(10.0, ge=1, le=300)  # a dead ingest replica's cameras move after this
    store_grace_s: float = Field(30.0, gt=0, le=3600)  # /healthz fails once the store is down this long
    max_concurrent_connects: int = Field(8, ge=1, le=1024)  # pull cameras (re)connecting at once
    outbound_deny_cidrs: list[str] = list(DEFAULT_DENY_CIDRS)  # camera URLs may not reach these (link-local, metadata)
    outbound_allow_cidrs: list[str] = []  # when given, camera URLs may reach only these ranges (deny still wins)
    outbound_deny_hosts: list[str] = list(DEFAULT_DENY_HOSTS)  # host names refused before resolving
    push_host: str = "127.0.0.1"  # where cameras publish in push mode
    push_ports: tuple[int, int] = (8554, 8653)
    default_timezone: str = "UTC"

    # queries
    answer_mode: Literal["auto", "llm", "timeline"] = "auto"  # auto: timeline for the tiny model, else llm
    token_budget: int = Field(16_384, ge=256)
    max_new_tokens: int = Field(256, ge=1, le=4096)
    summary_batches: int = Field(8, ge=0, le=64)  # LLM answers over more than fits: batches summarised first
    summary_tokens: int = Field(48, ge=8, le=512)  # length of one batch summary
    default_query_minutes: float = Field(60.0, gt=0)
    change_threshold: float = Field(0.1, gt=0, lt=2)  # novelty budget: 1 - cos above which a cell changed

    # alerts
    alert_worker: bool = True  # evaluate stored clips and deliver firings in the gateway (replicas share the work)
    max_alert_rules: int = Field(1000, ge=1, le=100_000)
    alert_max_attempts: int = Field(10, ge=1, le=1000)  # webhook attempts before a firing is dead-lettered
    alert_retry_base_s: float = Field(1.0, gt=0, le=3600)  # jittered backoff: base * 2**(attempt-1) ...
    alert_retry_max_s: float = Field(300.0, gt=0, le=86_400)  # ... up to this
    alert_webhook_timeout_s: float = Field(10.0, gt=0, le=300)
    alert_webhook_schemes: list[Literal["https", "http"]] = list(SCHEMES)
    alert_claim_idle_s: float = Field(30.0, gt=0, le=3600)  # clips a dead replica took are evaluated after this
    alert_firings_max_age_hours: float | None = Field(24.0 * 30, gt=0)  # firings recorded longer ago are forgotten

    # service
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key: SecretStr | None = None  # checked before a request's body is read; /healthz and /readyz are open
    public_docs: bool = False  # /docs, /redoc and /openapi.json without the key (they always need it otherwise)
    max_json_bytes: int = Field(1 << 20, ge=1)  # request bodies but uploads (max_upload_bytes); over it: 413
    secret_key: SecretStr | None = None  # seals camera credentials in the store; default: data_dir/secret.key
    ray_address: str | None = Field(None, validation_alias=AliasChoices("RAY_ADDRESS", "OMNISIFT_RAY_ADDRESS"))
    encoder: EncoderOptions = EncoderOptions()
    answerer: DeploymentOptions = DeploymentOptions()
    gateway: DeploymentOptions = DeploymentOptions(num_cpus=0.5)
    ingest: DeploymentOptions = DeploymentOptions(num_cpus=0.5)
    config_file: Path | None = Field(None, validation_alias=AliasChoices("OMNISIFT_CONFIG"))

    @field_validator("default_timezone")
    @classmethod
    def _iana_timezone(cls, value: str) -> str:
        if not is_timezone_name(value):
            raise ValueError(f"{value[:64]!r} is not an IANA timezone name (e.g. 'Europe/Berlin', 'UTC')")
        return value

    @field_validator("outbound_deny_cidrs", "outbound_allow_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # ValueError naming the first that is not a range
        return value

    @field_validator("secret_key", "api_key", "redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        """`OMNISIFT_SECRET_KEY=` in an env file means not set, not an empty key."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _budgets_need_omnisift(self) -> Settings:
        for name, value, default in (
            ("video_budget", self.video_budget, "fixed"),
            ("compression_profile", self.compression_profile, None),
        ):
            if value not in (default, "paper") and self.compression_method != "omnisift":
                raise ValueError(
                    f"{name} {value!r} needs compression_method 'omnisift' (got {self.compression_method!r})"
                )
        if self.video_budget != "fixed" and self.compression_profile == "monitoring":
            raise ValueError("the monitoring profile has its own video budget; leave video_budget 'fixed'")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings]
        config_file = _config_file(init_settings.init_kwargs) or _config_file(env_settings())
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=Path(config_file)))
        return tuple(sources)

    # derived objects for the layers below, so nothing else reads configuration

    @property
    def uses_tiny_model(self) -> bool:
        return self.model.split(":")[0] == "tiny"

    @property
    def answers_with_llm(self) -> bool:
        return self.answer_mode == "llm" or (self.answer_mode == "auto" and not self.uses_tiny_model)

    @property
    def removal_ratios(self) -> RemovalRatios:
        return PRESETS[self.compression_preset]

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def frame_limits(self) -> FrameLimits:
        return FrameLimits(min_pixels=self.min_frame_pixels, max_pixels=self.max_frame_pixels)

    def media_policy(self) -> MediaPolicy:
        return MediaPolicy(
            media_roots=(self.uploads_dir, *self.media_roots),
            max_upload_bytes=self.max_upload_bytes,
            max_duration_s=self.max_duration_hours * 3600,
            addresses=self.address_policy(),
        )

    def address_policy(self) -> AddressPolicy:
        """Where the service may connect out to (camera URLs)."""
        return AddressPolicy(
            deny_cidrs=tuple(self.outbound_deny_cidrs),
            allow_cidrs=tuple(self.outbound_allow_cidrs),
            deny_hosts=tuple(self.outbound_deny_hosts),
        )

    def secrets(self) -> SecretBox:
        """What seals stream URLs in the store: `secret_key`, else a key file made once in data_dir."""
        key = self.secret_key.get_secret_value() if self.secret_key else None
        return secret_box(key, self.data_dir / "secret.key")

    def redis_config(self) -> RedisConfig:
        url = self.redis_url.get_secret_value() if self.redis_url else None
        return RedisConfig(url=url, data_dir=self.data_dir / "redis")

    def store_config(self) -> StoreConfig:
        age = None if self.retention_max_age_hours is None else timedelta(hours=self.retention_max_age_hours)
        return StoreConfig(
            namespace=self.store_namespace,
            encoding=self.store_encoding,
            retention=RetentionPolicy(max_age=age, max_bytes=self.retention_max_bytes),
            tiers=self.tier_config(),
        )

    def tier_config(self) -> TierConfig:
        """The cold tier's place, the hot-tier size and the thinning budget (docs/architecture.md, "Tiered storage")."""
        thinning = None
        if self.thinning_budget_bytes is not None:
            thinning = ThinningPolicy(self.thinning_budget_bytes, self.thinning_keep_share)
        return TierConfig(
            cold_dir=self.cold_dir or self.data_dir / "cold",
            hot_bytes=self.hot_tier_bytes,
            thinning=thinning,
            activity=self.activity_config(),
        )

    def activity_config(self) -> ActivityConfig:
        """What counts as an active chunk, for ingest's scores, the timeline and the planner alike."""
        return ActivityConfig(change=ChangeTest(change_threshold=self.change_threshold))

    def novelty_budget(self) -> NoveltyBudget | None:
        """The video budget that follows novelty, by the same change test as the timeline."""
        if self.video_budget == "fixed":
            return None
        return NoveltyBudget(self.activity_config().change, self.novelty_still_keep)

    @property
    def profile(self) -> Literal["paper", "monitoring"]:
        """The compression profile in force: the one set, else monitoring where it applies."""
        if self.compression_profile is not None:
            return self.compression_profile
        return "monitoring" if self.compression_method == "omnisift" and self.video_budget == "fixed" else "paper"

    def monitoring_budget(self) -> MonitoringBudget | None:
        """Change-first video and salience-first audio, for the monitoring profile."""
        return MonitoringBudget() if self.profile == "monitoring" else None

    def alert_delivery(self) -> DeliveryConfig:
        return DeliveryConfig(
            max_attempts=self.alert_max_attempts,
            backoff=Backoff(self.alert_retry_base_s, self.alert_retry_max_s),
            timeout_s=self.alert_webhook_timeout_s,
            schemes=tuple(self.alert_webhook_schemes),
        )

    @property
    def asks_questions(self) -> bool:
        """Question alerts need a language model that produces language: a real checkpoint, deployed."""
        return self.answers_with_llm and not self.uses_tiny_model

    def planner_config(self) -> PlannerConfig:
        return PlannerConfig(token_budget=self.token_budget, activity=self.activity_config())


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """The settings: `overrides`, then OMNISIFT_* variables, then the YAML file, then defaults; InvalidConfig
    names every field that is wrong."""
    if config_file is not None and not config_file.is_file():
        raise InvalidConfig(f"no such config file: {config_file}")
    try:
        return Settings(**overrides, **({"config_file": config_file} if config_file else {}))
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors())
        raise InvalidConfig(f"invalid settings: {reasons}") from None


def _config_file(values: dict) -> str | None:
    """The YAML file named by a source's values, under the field's alias (OMNISIFT_CONFIG) or its name."""
    return values.get("OMNISIFT_CONFIG") or values.get("config_file")
