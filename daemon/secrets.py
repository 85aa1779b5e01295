"""Which values are secrets, and taking them out of text before it is stored, shown or sent.

Light on purpose (stdlib only, no litellm): the engine uses it where a check runs, which may be
a remote node, and `llm.scrub` uses it for messages that reach a user or a log.

A value is a secret when its variable is named by an `api_key_env` setting, is one of the
provider key variables litellm reads (a static list: importing litellm here would cost seconds),
or has KEY, TOKEN, SECRET, PASSWORD or CREDENTIAL in its name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MARK = "[redacted]"

PROVIDER_KEYS: frozenset[str] = frozenset({
    "OPENAI_API_KEY", "OPENAI_ORGANIZATION", "AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_AD_TOKEN",
    "AZURE_CLIENT_SECRET", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS", "VERTEXAI_CREDENTIALS", "MISTRAL_API_KEY", "CODESTRAL_API_KEY",
    "GROQ_API_KEY", "COHERE_API_KEY", "CO_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_API_KEY",
    "FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "DEEPSEEK_API_KEY", "XAI_API_KEY", "PERPLEXITYAI_API_KEY",
    "PERPLEXITY_API_KEY", "OPENROUTER_API_KEY", "OR_API_KEY", "HUGGINGFACE_API_KEY", "HF_TOKEN",
    "REPLICATE_API_KEY", "REPLICATE_API_TOKEN", "ANYSCALE_API_KEY", "DEEPINFRA_API_KEY", "CEREBRAS_API_KEY",
    "SAMBANOVA_API_KEY", "NVIDIA_NIM_API_KEY", "AI21_API_KEY", "NLP_CLOUD_API_KEY", "ALEPH_ALPHA_API_KEY",
    "VOYAGE_API_KEY", "DATABRICKS_API_KEY", "DATABRICKS_TOKEN", "WATSONX_API_KEY", "WATSONX_APIKEY",
    "WATSONX_TOKEN", "CLOUDFLARE_API_KEY", "PREDIBASE_API_KEY", "FRIENDLIAI_API_KEY", "GITHUB_API_KEY",
    "GITHUB_TOKEN", "DASHSCOPE_API_KEY", "MOONSHOT_API_KEY", "VOLCENGINE_API_KEY", "NSCALE_API_KEY",
    "LITELLM_API_KEY", "LITELLM_MASTER_KEY", "OLLAMA_API_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
})
"""Variables litellm reads credentials from (its providers' documented names)."""

EITHER: tuple[tuple[str, ...], ...] = (
    ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"),
    ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
)
"""Variables of which any one is enough: litellm reads the first it finds."""


def needed(missing: Iterable[str]) -> list[tuple[str, ...]]:
    """Group the variables a provider reports missing: each group is one credential, any member of
    which will do ("GEMINI_API_KEY or GOOGLE_API_KEY"); the groups are all needed."""
    groups: list[tuple[str, ...]] = []
    for name in missing:
        group = next((g for g in EITHER if name in g), (name,))
        if group not in groups:
            groups.append(group)
    return groups


def say_needed(groups: Iterable[tuple[str, ...]]) -> str:
    """`ANTHROPIC_API_KEY`; `GEMINI_API_KEY or GOOGLE_API_KEY`; `AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`."""
    return " and ".join(" or ".join(g) for g in groups)


SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")

# A named variable is a secret whatever its value looks like; a variable caught only by a word in
# its name must hold something key-like, so "1" in MAX_KEYS never blanks every digit of a log.
_MIN_NAMED = 4
_MIN_MATCHED = 8

KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|api[_-]?key['\"]?\s*[:=]\s*['\"]?[^\s'\",}]+)", re.I)
"""Text that looks like a key even when its value is not known here (provider error messages)."""


def is_secret_name(name: str, named: Iterable[str] = ()) -> bool:
    """Is this variable's value a secret (named by a setting, a provider key, or a secret-like name)?"""
    upper = name.upper()
    return name in set(named) or upper in PROVIDER_KEYS or any(w in upper for w in SECRET_WORDS)


def secret_values(named: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of every secret variable in `environ` (default: this process's), longest first."""
    env = os.environ if environ is None else environ
    explicit = set(named) | PROVIDER_KEYS
    found: set[str] = set()
    for name, value in env.items():
        if not value:
            continue
        if name in explicit or name.upper() in PROVIDER_KEYS:
            if len(value) >= _MIN_NAMED:
                found.add(value)
        elif len(value) >= _MIN_MATCHED and any(w in name.upper() for w in SECRET_WORDS):
            found.add(value)
    # longest first: a secret that contains another is replaced whole
    return sorted(found, key=len, reverse=True)


def redact(text: str, values: Iterable[str], *, cut: str | None = None) -> str:
    """Replace every value in text; with `cut` (the marker of a truncation), also a value's start
    left just before that marker, where the output was cut in the middle of a secret."""
    values = list(values)
    for value in values:
        if value in text:
            text = text.replace(value, MARK)
    if cut and values and cut in text:
        head, sep, tail = text.partition(cut)
        for value in values:
            for k in range(len(value) - 1, _MIN_NAMED - 1, -1):
                if head.endswith(value[:k]):
                    head = head[:-k] + MARK
                    break
        text = head + sep + tail
    return text
