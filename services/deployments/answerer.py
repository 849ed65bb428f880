"""Answerer deployment: the language half, reading planned clips' kept tokens from the store, streaming text."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Mapping

from omnisift_core.backbone import ClipContext, load_language
from omnisift_core.backbone.yes_no import yes_probability
from pipeline.query.wording import clip_header
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.connection import connect
from pipeline.store.tiering import ColdReads
from services.deployments.queries import PlannedPrompt, PromptFacts
from services.models import model_setup, use_cpu_threads
from services.settings import Settings
from services.telemetry import configure_tracing, continued, tracer


class Answerer:
    def __init__(self, settings: Settings):
        configure_tracing("answerer")
        use_cpu_threads(settings.answerer.num_cpus)
        setup = model_setup(settings)
        self.language = load_language(setup.checkpoint, setup.device)
        self.store = AnchorStore.open(connect(settings.redis_config()), setup.fingerprint, settings.store_config())
        self._lock = threading.Lock()  # one generation at a time per replica; more replicas answer in parallel

    def _contexts(self, prompt: PlannedPrompt, cold: ColdReads | None = None) -> list[ClipContext]:
        stored = self.store.get_many([clip_id for clip_id, _ in prompt.clips], timing=cold)
        return [
            ClipContext(header, clip.tokens, clip.meta.source_tokens)
            for (_, header), clip in zip(prompt.clips, stored, strict=True)
        ]

    async def stream(
        self, prompt: PlannedPrompt, trace: Mapping[str, str] | None = None
    ) -> AsyncIterator[str | PromptFacts]:
        """First the prompt's facts (sizes, what reading its tokens cost, hot and cold), then text pieces as
        generated (call through a handle with .options(stream=True))."""
        queue: asyncio.Queue[str | PromptFacts | BaseException | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def produce() -> None:
            try:
                with continued(trace or {}), tracer.start_as_current_span("generate", attributes={"stream": True}):
                    began, cold = time.perf_counter(), ColdReads()
                    contexts = self._contexts(prompt, cold)
                    read_ms = (time.perf_counter() - began) * 1000
                    built = self.language.prompt(prompt.question, contexts)
                    facts = PromptFacts(built.full_tokens, len(built), read_ms, cold.seconds * 1000)
                    loop.call_soon_threadsafe(queue.put_nowait, facts)
                    with self._lock:
                        for piece in self.language.stream(prompt.question, contexts, prompt.max_new_tokens):
                            loop.call_soon_threadsafe(queue.put_nowait, piece)
            except BaseException as error:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, error)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = asyncio.create_task(asyncio.to_thread(produce))
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
        await worker

    def yes_probability(self, clip_id: str, question: str) -> float:
        """P(yes) to `question` over one stored clip's kept tokens (alert questions; docs/architecture.md, "Alerts")."""
        clip = self.store.get(clip_id)
        header = clip_header(clip.meta, self.store.camera(clip.meta.camera_id).tz)
        context = ClipContext(header, clip.tokens, clip.meta.source_tokens)
        with self._lock:
            return yes_probability(self.language, question, [context])
