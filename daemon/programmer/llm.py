"""The one place pasd talks to litellm: lazy import, one call, one error table.

litellm costs seconds and ~170 MB to import, so it is loaded on the first task (in a
thread, keeping the daemon responsive) and never by the CLI, LSP or TUI.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from daemon import secrets
from daemon.errors import BadModel, MissingCredentials
from daemon.programmer.spec import ModelSpec, ProviderFault, TaskFailed
from daemon.protocol import TokenUsage

_litellm: ModuleType | None = None
NO_KEY = "pasd-no-key"  # OpenAI-compatible local servers ignore it, but the client needs one


def load() -> ModuleType:
    """Import and configure litellm once (blocking: call through `ensure_loaded`)."""
    global _litellm
    if _litellm is None:
        # The price table ships with litellm; never fetch it at run time.
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        litellm.drop_params = True
        # litellm logs every call at INFO; under a busy pool that is a measurable share of the CPU
        logging.getLogger("LiteLLM").setLevel(logging.WARNING)
        _litellm = litellm
    return _litellm


async def ensure_loaded() -> ModuleType:
    return _litellm if _litellm is not None else await asyncio.to_thread(load)


@functools.cache  # read from package metadata: ~1 ms, and every receipt asks
def version() -> str | None:
    try:
        from importlib.metadata import version as v

        return v("litellm")
    except Exception:
        return None


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


def validate(spec: ModelSpec, *, keys: bool = True) -> None:
    """Refuse a malformed model string or (with `keys`) a provider whose credentials are missing here."""
    litellm = load()
    if not spec.model or spec.model != spec.model.strip() or " " in spec.model:
        raise BadModel(f"bad model string {spec.model!r}: expected provider/model, e.g. openai/gpt-4.1-mini")
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=spec.model, api_base=spec.api_base)
    except Exception as exc:
        raise BadModel(f"unknown model {spec.model!r}: {_first_line(exc)}") from exc
    if spec.api_base or not keys:
        return  # a custom endpoint may need no key; a wrong one fails the task with a clear reason
    if spec.api_key_env:
        if not os.environ.get(spec.api_key_env):
            raise MissingCredentials(f"{spec.model} needs a key: set {spec.api_key_env}")
        return
    env = litellm.validate_environment(model=spec.model)
    missing = env.get("missing_keys") or []
    if not env.get("keys_in_environment", True) and missing:
        raise MissingCredentials(f"{spec.model} ({provider}) needs credentials: set {', '.join(missing)}")


@dataclass
class Reply:
    text: str
    tokens: TokenUsage
    cost_usd: float
    priced: bool
    seconds: float


def _api_key(spec: ModelSpec) -> str | None:
    if spec.api_key_env:
        return os.environ.get(spec.api_key_env)
    return NO_KEY if spec.api_base else None


OnText = Callable[[str], None]  # called with each streamed piece of the reply


async def complete(spec: ModelSpec, messages: list[dict[str, str]], timeout: float,
                   on_text: OnText | None = None) -> Reply:
    """One streamed chat completion; failures come out as TaskFailed or ProviderFault, never raw.

    Cancelling the caller closes the HTTP stream at once, so the provider stops generating.
    """
    litellm = await ensure_loaded()
    kwargs: dict[str, Any] = {**spec.params, "model": spec.model, "messages": cache_marked(spec.model, messages),
                              "timeout": timeout, "stream": True, "stream_options": {"include_usage": True},
                              # pasd retries on another programmer itself; the provider client must not.
                              "num_retries": 0, "max_retries": 0}
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    key = _api_key(spec)
    if key:
        kwargs["api_key"] = key
    started = time.monotonic()
    pieces: list[str] = []
    usage: Any = None
    try:
        async with asyncio.timeout(timeout + 5):
            stream = await litellm.acompletion(**kwargs)
            try:
                async for chunk in stream:
                    usage = getattr(chunk, "usage", None) or usage
                    choices = getattr(chunk, "choices", None) or []
                    piece = getattr(getattr(choices[0], "delta", None), "content", None) if choices else None
                    if piece:
                        pieces.append(piece)
                        if on_text is not None:
                            on_text(piece)
            finally:
                await _close(stream)
            reported = _provider_reported(stream)
    except Exception as exc:
        raise classify(exc, key) from None
    seconds = time.monotonic() - started
    text = "".join(pieces)
    if not text and not reported:  # e.g. a proxy's error page where the event stream should be
        raise ProviderFault("provider", "the provider's stream carried no answer")
    if usage is None:
        tokens = _counted(litellm, spec.model, messages, text)
    else:  # without the provider's figures litellm counts the tokens itself: keep them, marked
        tokens = _tokens(usage).model_copy(update={"estimated": not reported})
    cost, priced = _cost(litellm, spec, usage, tokens)
    return Reply(text=text, tokens=tokens, cost_usd=cost, priced=priced, seconds=seconds)


async def _close(stream: Any) -> None:
    """Close the provider's HTTP stream (on cancel, error or end); litellm shields the close itself."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # nothing more to release
            pass


def _provider_reported(stream: Any) -> bool:
    """Whether the provider itself sent usage on the stream (litellm keeps the chunks it received,
    and adds a usage of its own counting at the end when the provider sent none)."""
    chunks = getattr(stream, "chunks", None)
    if not isinstance(chunks, list):
        return True  # cannot tell: trust the usage the stream ended with
    return any(getattr(c, "usage", None) is not None for c in chunks)


def _tokens(usage: Any) -> TokenUsage:
    """The provider's usage as a TokenUsage; cached tokens come as OpenAI's prompt_tokens_details
    or Anthropic's cache_read/creation_input_tokens (litellm maps both onto its Usage)."""
    details = getattr(usage, "completion_tokens_details", None)
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(prompt_details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", None)
    return TokenUsage(
        input=int(getattr(usage, "prompt_tokens", 0) or 0),
        output=int(getattr(usage, "completion_tokens", 0) or 0),
        reasoning=int(getattr(details, "reasoning_tokens", 0) or 0),
        cached_input=int(cached or 0),
        cache_write=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
    )


def _counted(litellm: ModuleType, model: str, messages: list[dict[str, str]], text: str) -> TokenUsage:
    """The provider sent no usage: count with litellm's tokenizer for the model, and say so."""
    try:
        prompt = int(litellm.token_counter(model=model, messages=messages))
        output = int(litellm.token_counter(model=model, text=text)) if text else 0
    except Exception:  # no tokenizer at all: a rough count, still marked as estimated
        prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4
        output = len(text) // 4
    return TokenUsage(input=prompt, output=output, estimated=True)


# Providers that cache a prompt prefix only where the request marks it (the others cache by themselves).
_MARKED_CACHE = ("anthropic",)
_MARKED_CACHE_HOSTS = ("bedrock", "bedrock_converse", "vertex_ai", "vertex_ai_beta")


def wants_cache_marks(model: str) -> bool:
    provider = provider_of(model)
    return provider in _MARKED_CACHE or (provider in _MARKED_CACHE_HOSTS and "claude" in model.lower())


def cache_marked(model: str, messages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """For Anthropic models, mark the end of the prompt's stable prefix (the system text, then the
    first user message up to its task-specific tail) with `cache_control`, so repair rounds and
    later tasks on the same files read it from the provider's cache. Other models: unchanged."""
    if not wants_cache_marks(model):
        return list(messages)
    from daemon.programmer.prompt import stable_end

    out: list[dict[str, Any]] = [dict(m) for m in messages]
    mark = {"type": "ephemeral"}
    first_user = next((i for i, m in enumerate(out) if m.get("role") == "user"), None)
    if first_user is not None and isinstance(out[first_user].get("content"), str):
        text = out[first_user]["content"]
        cut = stable_end(text)
        if cut > 0:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text[:cut], "cache_control": mark}]
            if text[cut:]:
                blocks.append({"type": "text", "text": text[cut:]})
            out[first_user]["content"] = blocks
            return out
    system = next((i for i, m in enumerate(out) if m.get("role") == "system"), None)
    if system is not None and isinstance(out[system].get("content"), str):
        out[system]["content"] = [{"type": "text", "text": out[system]["content"], "cache_control": mark}]
    return out


def _cost(litellm: ModuleType, spec: ModelSpec, usage: Any, tokens: TokenUsage) -> tuple[float, bool]:
    if spec.input_cost_per_token is not None or spec.output_cost_per_token is not None:
        price_in = spec.input_cost_per_token or 0
        price_cached = spec.cached_input_cost_per_token if spec.cached_input_cost_per_token is not None else price_in
        cost = ((tokens.input - tokens.cached_input) * price_in + tokens.cached_input * price_cached
                + tokens.output * (spec.output_cost_per_token or 0))
        return cost, True
    try:  # litellm's table prices cached reads (and Anthropic's cache writes) from the usage it carries
        if usage is not None:
            prompt_cost, completion_cost = litellm.cost_per_token(model=spec.model, usage_object=usage)
        else:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=spec.model, prompt_tokens=tokens.input, completion_tokens=tokens.output)
        return float(prompt_cost) + float(completion_cost), True
    except Exception:
        return 0.0, False  # not in litellm's price table: recorded as unpriced


# ---------------------------------------------------------------- the error table

# litellm exception class name -> (retryable, reason, what the user reads)
ERRORS: dict[str, tuple[bool, str, str]] = {
    "RateLimitError": (True, "rate_limit", "the provider is rate limiting (429)"),
    "InternalServerError": (True, "provider", "the provider failed or could not be reached"),
    "ServiceUnavailableError": (True, "provider", "the provider is unavailable (503)"),
    "APIConnectionError": (True, "connection", "could not connect to the provider"),
    "Timeout": (True, "model_timeout", "the model did not answer in time"),
    "APIError": (True, "provider", "the provider returned an error"),
    "JSONSchemaValidationError": (True, "malformed", "the provider's answer was malformed"),
    "AuthenticationError": (False, "auth", "the provider refused the credentials"),
    "PermissionDeniedError": (False, "auth", "the provider denied access"),
    "NotFoundError": (False, "bad_model", "the provider does not know this model"),
    "BadRequestError": (False, "bad_request", "the provider rejected the request"),
    "ContextWindowExceededError": (False, "context", "the prompt is too long for this model"),
    "ContentPolicyViolationError": (False, "policy", "the provider refused the content"),
    "UnprocessableEntityError": (False, "bad_request", "the provider could not process the request"),
    "BudgetExceededError": (False, "budget", "budget exceeded"),
}


def classify(exc: BaseException, secret: str | None = None) -> Exception:
    """Map a litellm (or transport) exception to TaskFailed / ProviderFault with a clean message."""
    if isinstance(exc, TimeoutError):
        return ProviderFault("model_timeout", "the model did not answer in time")
    for cls in type(exc).__mro__:
        entry = ERRORS.get(cls.__name__)
        if entry is not None:
            retryable, reason, text = entry
            detail = scrub(_first_line(exc), secret)
            message = f"{text}: {detail}" if detail else text
            if retryable:
                return ProviderFault(reason, message, retry_after=_retry_after(exc))
            return TaskFailed(reason, message)
    return ProviderFault("provider", scrub(f"{type(exc).__name__}: {_first_line(exc)}", secret))


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def scrub(text: str, secret: str | None = None, named: Iterable[str] = ()) -> str:
    """Remove every known secret (daemon/secrets.py) and anything that looks like a key from text
    that may reach a user or a log; `named`: more variables holding keys (`api_key_env`)."""
    values = secrets.secret_values(named)
    if secret and secret != NO_KEY:
        values.insert(0, secret)
    return secrets.KEYLIKE.sub(secrets.MARK, secrets.redact(text, values))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # litellm prefixes messages with its own class path; keep the provider's words.
    text = re.sub(r"^litellm\.\w+:\s*", "", text)
    line = text.splitlines()[0] if text else ""
    return line[:300]
