"""The one place pasd talks to litellm: lazy import, one call, one error table.

litellm costs seconds and ~170 MB to import, so it is loaded on the first task (in a
thread, keeping the daemon responsive) and never by the CLI, LSP or TUI.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import gc
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
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
        from daemon.programmer import openai_wire as wire  # noqa: F401  (aiohttp: imported here, off the event loop)

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


WHERE = " in the shell you submit from (or in the daemon's environment)"
EXAMPLES = "e.g. openai/gpt-4.1-mini, anthropic/claude-sonnet-4-5, gemini/gemini-2.5-flash, ollama/llama3"


def validate(spec: ModelSpec, *, keys: bool = True, submitted: Mapping[str, str] | None = None) -> list[str]:
    """Refuse a malformed model string or (with `keys`) a provider whose credentials are missing here
    and were not `submitted` with the task; returns the variables whose submitted keys the task needs
    (the daemon's own environment has none for them).

    A MissingCredentials error carries the variables (`data.variables`), so that a client whose
    environment has one can submit it with the task."""
    litellm = load()
    model = spec.model
    if not model or model != model.strip() or any(c.isspace() for c in model):
        raise BadModel(f"bad model string {model!r}: write provider/model, {EXAMPLES}")
    provider_part, slash, name = model.partition("/")
    if slash and not provider_part:
        raise BadModel(f"bad model string {model!r}: it names no provider before the '/'; {EXAMPLES}")
    if slash and not name.strip("/"):
        raise BadModel(f"bad model string {model!r}: it names no model after {provider_part + '/'!r}, "
                       f"e.g. {provider_part}/<model name>")
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=model, api_base=spec.api_base)
    except Exception as exc:
        if slash:
            why = f"{provider_part!r} is not a provider litellm knows"
        else:
            why = "it names no provider and litellm does not recognise it as a model"
        raise BadModel(f"unknown model {model!r}: {why}; write provider/model, {EXAMPLES}") from exc
    if not keys:
        return []
    given = submitted or {}
    if spec.api_key_env:
        if os.environ.get(spec.api_key_env):
            return []
        if not given.get(spec.api_key_env):
            raise MissingCredentials(f"{model} needs a key: set {spec.api_key_env}{WHERE}",
                                     data={"variables": [spec.api_key_env]})
        return [spec.api_key_env]
    if spec.api_base:
        return []  # a custom endpoint may need no key; a wrong one fails the task with a clear reason
    env = litellm.validate_environment(model=model)
    missing = env.get("missing_keys") or []
    if env.get("keys_in_environment", True) or not missing:
        return []
    needed = secrets.needed(missing)
    if any(not any(given.get(k) for k in group) for group in needed):
        raise MissingCredentials(f"{model} ({provider}) needs credentials: set {secrets.say_needed(needed)}{WHERE}",
                                 data={"variables": [k for group in needed for k in group]})
    # one variable per credential: the first of each group the client sent
    return [next(k for k in group if given.get(k)) for group in needed]


@dataclass
class Reply:
    text: str
    tokens: TokenUsage
    cost_usd: float
    priced: bool
    seconds: float


def _api_key(spec: ModelSpec) -> str | None:
    if spec.api_key_env:
        return spec.keys.get(spec.api_key_env) or os.environ.get(spec.api_key_env)
    if spec.api_base:
        return NO_KEY
    # a key submitted with the task, for a provider that takes one key (litellm reads the rest itself)
    return next(iter(spec.keys.values())) if len(spec.keys) == 1 else None


OnText = Callable[[str], None]  # called with each streamed piece of the reply


async def complete(spec: ModelSpec, messages: list[dict[str, str]], timeout: float,
                   on_text: OnText | None = None) -> Reply:
    """One streamed chat completion; failures come out as TaskFailed or ProviderFault, never raw.

    A model on OpenAI's wire goes straight to it (`openai_wire.py`: a fraction of the CPU); every other
    provider goes through litellm.acompletion. Cancelling the caller closes the HTTP stream at once,
    so the provider stops generating.
    """
    litellm = await ensure_loaded()
    key = _api_key(spec)
    direct = _direct_name(spec)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout + 5):
            if direct is not None:
                text, usage, reported = await _complete_direct(litellm, spec, direct, messages, key, timeout,
                                                               on_text)
            else:
                text, usage, reported = await _complete_litellm(litellm, spec, messages, key, timeout, on_text)
    except Exception as exc:
        raise classify(exc, key, timeout) from None
    seconds = time.monotonic() - started
    if not text and not reported:  # e.g. a proxy's error page where the event stream should be
        raise ProviderFault("provider", "the provider's stream carried no answer")
    if usage is None:
        tokens = _counted(litellm, spec.model, messages, text)
    else:  # without the provider's figures litellm counts the tokens itself: keep them, marked
        tokens = _tokens(usage).model_copy(update={"estimated": not reported})
    cost, priced = _cost(litellm, spec, usage, tokens)
    _settle()
    return Reply(text=text, tokens=tokens, cost_usd=cost, priced=priced, seconds=seconds)


_settled = False


def _settle() -> None:
    """Once the first reply is in, litellm and what it loads on first use are ~300,000 objects that
    live as long as the daemon; each full collection walked them all again, pausing the event loop
    (and every event and status answer) for 50-440 ms. Move them out of the collector's sight once."""
    global _settled
    if not _settled:
        _settled = True
        gc.freeze()


# `PASD_PROVIDER_CLIENT=litellm` sends every call through litellm.acompletion (to compare, or to
# step around a server the direct path does not suit).
CLIENT_ENV = "PASD_PROVIDER_CLIENT"


def _direct_name(spec: ModelSpec) -> str | None:
    """The model name to send on OpenAI's wire directly, or None when litellm must make the call."""
    if os.environ.get(CLIENT_ENV) == "litellm":
        return None
    from daemon.programmer import openai_wire as wire

    # OpenAI's own models take some params under other names or not at all (reasoning models:
    # max_completion_tokens, no temperature), which litellm knows; a server named by api_base takes
    # the plain ones as they are
    if spec.params and not (spec.api_base and all(k in wire.PLAIN_PARAMS for k in spec.params)):
        return None
    return _openai_name(spec.model, spec.api_base)


@functools.lru_cache(maxsize=256)
def _openai_name(model: str, api_base: str | None) -> str | None:
    """Resolved once per model: the name the provider knows, if litellm says the provider is OpenAI's wire."""
    try:
        name, provider, _, _ = load().get_llm_provider(model=model, api_base=api_base)
    except Exception:
        return None
    return name if provider == "openai" else None


async def _complete_direct(litellm: ModuleType, spec: ModelSpec, name: str, messages: list[dict[str, str]],
                           key: str | None, timeout: float, on_text: OnText | None) -> tuple[str, Any, bool]:
    from daemon.programmer import openai_wire as wire

    body: dict[str, Any] = {**spec.params, "model": name, "messages": messages, "stream": True,
                            "stream_options": {"include_usage": True}}
    key = key or os.environ.get("OPENAI_API_KEY")
    answer = await wire.stream(wire.endpoint(spec.api_base), body, key, timeout, on_text)
    usage = None
    if answer.usage is not None:
        try:  # litellm's Usage: what its price table reads cached and reasoning tokens from
            usage = litellm.Usage(**answer.usage)
        except Exception:
            usage = None
    return answer.text, usage, usage is not None


async def _complete_litellm(litellm: ModuleType, spec: ModelSpec, messages: list[dict[str, str]], key: str | None,
                            timeout: float, on_text: OnText | None) -> tuple[str, Any, bool]:
    kwargs: dict[str, Any] = {**spec.params, "model": spec.model, "messages": cache_marked(spec.model, messages),
                              "timeout": timeout, "stream": True, "stream_options": {"include_usage": True},
                              # pasd retries on another programmer itself; the provider client must not.
                              "num_retries": 0, "max_retries": 0}
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if key:
        kwargs["api_key"] = key
    pieces: list[str] = []
    usage: Any = None
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
    return "".join(pieces), usage, _provider_reported(stream)


async def aclose() -> None:
    """Release the direct path's connections on this event loop (the backend's shutdown)."""
    if _litellm is not None:
        from daemon.programmer import openai_wire as wire

        await wire.close()


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
    if not _in_price_table(spec.model):
        return 0.0, False  # not in litellm's price table: recorded as unpriced
    try:  # litellm's table prices cached reads (and Anthropic's cache writes) from the usage it carries
        if usage is not None:
            prompt_cost, completion_cost = litellm.cost_per_token(model=spec.model, usage_object=usage)
        else:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=spec.model, prompt_tokens=tokens.input, completion_tokens=tokens.output)
        return float(prompt_cost) + float(completion_cost), True
    except Exception:
        return 0.0, False  # not in litellm's price table: recorded as unpriced


@functools.lru_cache(maxsize=256)
def _in_price_table(model: str) -> bool:
    """Whether litellm prices this model, asked once: a model it does not know costs it ~0.5 ms of
    fallback name matching at every reply before it says so (the table does not change at run time)."""
    try:
        load().cost_per_token(model=model, prompt_tokens=1, completion_tokens=1)
        return True
    except Exception:
        return False


# ---------------------------------------------------------------- the error table

# litellm exception class name -> (retryable, reason, what the user reads)
ERRORS: dict[str, tuple[bool, str, str]] = {
    "RateLimitError": (True, "rate_limit", "the provider is rate limiting (429): wait, or lower pool.workers"),
    "InternalServerError": (True, "provider", "the provider's server failed (5xx)"),
    "ServiceUnavailableError": (True, "provider", "the provider is unavailable (503)"),
    "APIConnectionError": (True, "connection", "could not connect to the provider"),
    "Timeout": (True, "model_timeout", "the model did not answer in time"),
    "APIError": (True, "provider", "the provider returned an error"),
    "JSONSchemaValidationError": (True, "malformed", "the provider's answer was malformed"),
    "AuthenticationError": (False, "auth", "the provider refused the credentials: check the key"),
    "PermissionDeniedError": (False, "auth", "the provider denied access: check the key's permissions"),
    "NotFoundError": (False, "bad_model", "the provider does not know this model: check the model name"),
    "BadRequestError": (False, "bad_request", "the provider rejected the request"),
    "ContextWindowExceededError": (False, "context", "the prompt is too long for this model"),
    "ContentPolicyViolationError": (False, "policy", "the provider refused the content"),
    "UnprocessableEntityError": (False, "bad_request", "the provider could not process the request"),
    "BudgetExceededError": (False, "budget", "budget exceeded"),
}

# what went wrong under the HTTP client, found in the exception's chain -> (reason, what happened, what to check)
TRANSPORT: dict[str, tuple[str, str, str]] = {
    "dns": ("connection", "could not resolve the provider's host {where}",
            "check the model's api_base and this machine's network and DNS"),
    "refused": ("connection", "the connection to {where} was refused",
                "is the server running there? check the model's api_base"),
    "tls": ("connection", "TLS with {where} failed ({detail})",
            "check the api_base's scheme (http or https) and the server's certificate"),
    "reset": ("connection", "the connection to {where} was closed before an answer",
              "check the server at the model's api_base"),
    "unreachable": ("connection", "could not reach {where} ({detail})",
                    "check the model's api_base and this machine's network"),
    "timeout": ("model_timeout", "the model did not answer {within}",
                "check the server at the model's api_base, or raise guardrails.model_timeout_s"),
}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every exception it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 20:
        e = todo.pop(0)
        if e is None or any(e is x for x in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__]
    return seen


def _transport(exc: BaseException) -> tuple[str, str, str] | None:
    """(kind, host:port, detail) when the failure was below HTTP: no name, refused, TLS, reset, timeout."""
    import socket
    import ssl

    chain = _chain(exc)
    host = next((h for e in chain if isinstance(h := getattr(e, "host", None), str) and h), None)
    port = next((pt for e in chain if isinstance(pt := getattr(e, "port", None), int)), None)
    where = (f"{host}:{port}" if port else host) if host else "the provider"
    names = {type(e).__name__ for e in chain}
    for e in chain:
        if isinstance(e, socket.gaierror) or "DNSError" in type(e).__name__:
            return "dns", host or where, ""
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "refused", where, ""
    tls = [e for e in chain if isinstance(e, ssl.SSLError)]
    if tls:  # the innermost carries OpenSSL's reason ("WRONG_VERSION_NUMBER", "CERTIFICATE_VERIFY_FAILED")
        why = next((r for e in reversed(tls) if isinstance(r := getattr(e, "reason", None), str)), "handshake")
        return "tls", where, why.replace("_", " ").lower()
    if names & {"Timeout", "APITimeoutError", "ReadTimeout", "ConnectTimeout", "TimeoutError",
                "ServerTimeoutError", "SocketTimeoutError", "ConnectionTimeoutError", "PoolTimeout", "WriteTimeout"}:
        return "timeout", where, ""
    for e in chain:
        if isinstance(e, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)) or \
                type(e).__name__ in ("ServerDisconnectedError", "RemoteProtocolError") or \
                (isinstance(e, OSError) and e.errno in (errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE)):
            return "reset", where, ""
    for e in chain:
        if isinstance(e, OSError) and e.errno is not None and type(e).__module__ in ("builtins", "socket"):
            return "unreachable", where, e.strerror or str(e)
    return None


def _within(exc: BaseException, timeout: float | None = None) -> str:
    found = re.search(r"timeout value=([\d.]+)", "\n".join(str(e) for e in _chain(exc)))
    seconds = float(found.group(1)) if found else timeout
    return f"within {seconds:g} s" if seconds is not None else "in time"


def classify(exc: BaseException, secret: str | None = None, timeout: float | None = None) -> Exception:
    """Map a litellm (or transport) exception to TaskFailed / ProviderFault with a message in pasd's
    words: what happened and what to check, never the client library's internals. `timeout`: the
    call's limit in seconds, named when the model did not answer within it."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return ProviderFault("model_timeout", TRANSPORT["timeout"][1].format(within=_within(exc, timeout))
                             + ": " + TRANSPORT["timeout"][2])
    found = _transport(exc)
    if found is not None:
        kind, where, detail = found
        reason, happened, check = TRANSPORT[kind]
        text = happened.format(where=where, detail=detail, within=_within(exc, timeout)) + ": " + check
        return ProviderFault(reason, scrub(text, secret), retry_after=None)
    # the direct path names the litellm class its HTTP status stands for, so one table serves both
    named = getattr(exc, "litellm_kind", None)
    for name in [named] if isinstance(named, str) else [cls.__name__ for cls in type(exc).__mro__]:
        entry = ERRORS.get(name)
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
        headers = getattr(exc, "headers", None)
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


# litellm's and the HTTP clients' wording around the provider's own words
_NOISE = [
    re.compile(r"^(litellm\.)?\w+(Error|Exception|Timeout):\s*"),  # class names, repeated
    re.compile(r"^\w+Exception\s*-\s*"),  # "OpenAIException - "
    re.compile(r"\s*ssl:(<[^>]*>|\S+)"),  # aiohttp's "ssl:<ssl.SSLContext object at 0x...>"
    re.compile(r"\s*<[\w.]+ object at 0x[0-9a-f]+>"),
    re.compile(r"\.?\s*Handle with `?litellm\.\w+`?\.?"),
    re.compile(r"\s*Received Model Group=.*$"),
    re.compile(r"\s*LiteLLM Retried: .*$"),
    re.compile(r"\s*Error_str: .*$"),
]


def _first_line(exc: BaseException) -> str:
    """The first line of the provider's own words, without the client libraries' class names and internals."""
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    for _ in range(3):  # prefixes nest: "litellm.X: X: OpenAIException - ..."
        for pattern in _NOISE:
            line = pattern.sub("", line).strip()
    return line[:300]
