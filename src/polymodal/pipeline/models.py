"""The model steps, Embed and Translate: a field in, the model's output into another field,
through a dynamic batcher so concurrent runs share forward passes.

Models load on first use, not when a step is made, so a pipeline is checked (YAML parsed,
options validated) in milliseconds and a step served remotely loads its model only there.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from polymodal.embed.base import Embedder, EmbedderConfig
from polymodal.errors import ConfigError
from polymodal.pipeline.records import get_field, is_present, with_fields
from polymodal.translate.base import Translator, TranslatorConfig

if TYPE_CHECKING:
    from polymodal.pipeline.batching import BatcherStats, DynamicBatcher

__all__ = ["TRANSLATE_FIELDS", "Embed", "Translate"]

C = TypeVar("C", bound=BaseModel)


def _config(cls: type[C], value: Any) -> C:
    """Validate a model config, as a ConfigError naming the bad option."""
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"{cls.__name__}: {loc}: {first['msg']}") from None


class _ModelStep:
    """Shared by Embed and Translate: lazy model, field in/out, dynamic batching.

    With ``batching`` on, ``run`` sends its values through a :class:`DynamicBatcher`, so
    concurrent runs (several pipelines in threads, or many requests to a served step) share
    forward passes; the step's ``timeout`` becomes the batcher's deadline, so timed-out items
    leave the queue instead of being computed for nobody.
    """

    name: str

    def __init__(
        self,
        *,
        field: str,
        into: str,
        timeout: float | None,
        batching: bool,
        max_batch_size: int | None,
        max_wait_ms: float,
        max_queue: int,
    ) -> None:
        self.field, self.into, self.timeout = field, into, timeout
        self.batching = batching
        self.max_batch_size, self.max_wait_ms, self.max_queue = max_batch_size, max_wait_ms, max_queue
        self._lock = threading.Lock()
        self._loaded: Any = None
        self._batcher: DynamicBatcher[Any, Any] | None = None

    @property
    def handles_timeout(self) -> bool:
        return self.batching

    def _load(self) -> Any:
        raise NotImplementedError

    def _apply(self, values: list[Any]) -> list[Any]:
        raise NotImplementedError

    def model(self) -> Any:
        """The model (loaded once, on first use, even when many threads ask at once)."""
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _queue(self) -> DynamicBatcher[Any, Any]:
        from polymodal.pipeline.batching import DynamicBatcher

        model = self.model()
        with self._lock:
            if self._batcher is None:
                self._batcher = DynamicBatcher(
                    self._apply,
                    max_batch_size=self.max_batch_size or int(getattr(model, "batch_size", 32)),
                    max_wait_ms=self.max_wait_ms,
                    max_queue=self.max_queue,
                    name=self.name,
                )
            return self._batcher

    def run(self, batch: list[Any]) -> list[Any]:
        todo = [i for i, item in enumerate(batch) if is_present(get_field(item, self.field))]
        if not todo:
            return list(batch)
        values = [get_field(batch[i], self.field) for i in todo]
        results = self._queue().submit_many(values, timeout=self.timeout) if self.batching else self._apply(values)
        out = list(batch)
        for i, value in zip(todo, results, strict=True):
            out[i] = with_fields(batch[i], {self.into: value}, step=self.name)
        return out

    def stats(self) -> BatcherStats:
        """The batcher's counters: forward passes, items, largest batch, queue depth ..."""
        return self._queue().stats()

    def close(self) -> None:
        """Stop the batching worker (what is queued still runs); a later run starts a new one."""
        with self._lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()


class Embed(_ModelStep):
    """Embed ``field`` of each item into ``into`` (default ``f"{field}_vec"``, as in MediaItem).

    Items whose field is missing, None or blank pass through unchanged, so one pipeline can
    carry text and images with an embedder for each.

    Args:
        config: an EmbedderConfig (or its dict), or a loaded Embedder.
        max_batch_size, max_wait_ms, max_queue: dynamic batching (see DynamicBatcher);
            ``max_batch_size`` defaults to the embedder's ``batch_size``.
    """

    def __init__(
        self,
        config: EmbedderConfig | Mapping[str, Any] | Embedder,
        *,
        field: str = "text",
        into: str | None = None,
        name: str | None = None,
        timeout: float | None = None,
        batching: bool = True,
        max_batch_size: int | None = None,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
    ) -> None:
        self.embedder = config if isinstance(config, Embedder) else None
        if isinstance(config, Embedder):
            self.config = config.config
        else:  # the name a store records (hub names normalised), as polymodal.embed.load does
            from polymodal.embed.hub import canonical_name

            cfg = _config(EmbedderConfig, config)
            self.config = cfg.model_copy(update={"model": canonical_name(cfg.model)})
        self.name = name or f"embed:{field}"
        super().__init__(
            field=field,
            into=into or f"{field}_vec",
            timeout=timeout,
            batching=batching,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
        )

    def _load(self) -> Embedder:
        if self.embedder is not None:
            return self.embedder
        from polymodal.embed import load

        return load(self.config)

    def _apply(self, values: list[Any]) -> list[Any]:
        return list(self.model().embed(values))


#: Default (input field, output field) per translator family.
TRANSLATE_FIELDS: dict[str, tuple[str, str]] = {
    "imagenet-labels": ("image", "labels"),
    "rapidocr": ("image", "ocr"),
    "pocketsphinx": ("audio", "text"),
}


class Translate(_ModelStep):
    """Translate ``field`` (an image, audio ...) into text stored in ``into``.

    Defaults per family: imagenet-labels reads ``image`` into ``labels``, rapidocr ``image``
    into ``ocr``, pocketsphinx ``audio`` into ``text``. Batching as for :class:`Embed`.
    """

    def __init__(
        self,
        config: TranslatorConfig | Mapping[str, Any] | Translator,
        *,
        field: str | None = None,
        into: str | None = None,
        name: str | None = None,
        timeout: float | None = None,
        batching: bool = True,
        max_batch_size: int | None = None,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
    ) -> None:
        self.translator = config if isinstance(config, Translator) else None
        self.config = config.config if isinstance(config, Translator) else _config(TranslatorConfig, config)
        default_in, default_out = TRANSLATE_FIELDS.get(self.config.family, ("image", "text"))
        if self.translator is not None:
            default_in = self.translator.source
        self.name = name or f"translate:{self.config.family}"
        super().__init__(
            field=field or default_in,
            into=into or default_out,
            timeout=timeout,
            batching=batching,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
        )

    def _load(self) -> Translator:
        if self.translator is not None:
            return self.translator
        from polymodal.translate import load

        return load(self.config)

    def _apply(self, values: list[Any]) -> list[Any]:
        return [t.text for t in self.model().translate(values)]
