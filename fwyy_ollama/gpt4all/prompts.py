"""The prompts GPT4All gets: which settings keys each app version reads, and their values.

The desktop app changed how it formats a chat twice (gpt4all-chat/src: mysettings.cpp,
chatllm.cpp, modellist.cpp), so fwyy writes what the installed version reads:

- 3.0-3.4: `promptTemplate` (one user turn, `%1` the message, `%2` where the answer goes; what
  follows `%2` is fed after each answer) and `systemPrompt` (raw text with control tokens).
- 3.5-3.7: `chatTemplate` (Jinja, rendered with `messages` and `add_generation_prompt` by
  Jinja2Cpp) and `systemMessage` (plain text). The legacy keys win when present, and a Jinja
  chat then fails ("legacy prompt template"), so they are removed. Jinja2Cpp misses several
  jinja2 features (list slicing, `is not none`, loop controls, `{{ 'x'}}` without a space before
  `}}`); GPT4All swaps known templates only when they are a GGUF's own default, never a user's
  setting, so fwyy's family templates avoid those features (tests/test_gpt4all.py checks).
- 3.8 and later: the same keys, rendered with minja.

The Python bindings (gpt4all 2.8) read no settings file: `chat_session(system_prompt,
prompt_template)` ingests the system prompt verbatim and formats each user turn with
`prompt_template.format(message)`. All of these are derived from the one family chat template, so
the app, the bindings and Ollama see the same prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fwyy_ollama.errors import FwyyError

Version = tuple[int, int, int]

OLDEST_SUPPORTED: Version = (3, 0, 0)
JINJA_SINCE: Version = (3, 5, 0)
"""chatTemplate / systemMessage (Jinja2Cpp) replace promptTemplate / systemPrompt."""
MINJA_SINCE: Version = (3, 8, 0)
LEGACY_KEYS = ("promptTemplate", "systemPrompt")
MODERN_KEYS = ("chatTemplate", "systemMessage")
SUPPORTED = "GPT4All 3.0-3.4 (promptTemplate/systemPrompt), 3.5-3.7 (Jinja2Cpp) and 3.8+ (minja)"


def settings_format(version: Version | None) -> str:
    """ "legacy" (3.0-3.4), "jinja2cpp" (3.5-3.7) or "minja" (3.8+; also for an unknown version,
    whose keys are the same as 3.5's)."""
    if version is None:
        return "minja"
    if version < OLDEST_SUPPORTED:
        raise FwyyError(
            f"GPT4All {'.'.join(map(str, version))} is not supported: fwyy writes settings for {SUPPORTED}",
            hint="update GPT4All, or pass --gpt4all-version if the installed one is newer",
        )
    if version < JINJA_SINCE:
        return "legacy"
    return "jinja2cpp" if version < MINJA_SINCE else "minja"


def _family_template(family: str) -> tuple[str, str, str]:
    """(Jinja chat template, BOS text, EOS text) of a chat family (fwyy_ollama.chat_families)."""
    from fwyy_ollama.chat_families import get_family

    fam = get_family(family)
    return fam.hf_chat_template, fam.bos_token, fam.eos_token


def default_system_prompt(lang: str) -> str:
    from fwyy_ollama.prompts import system_prompt

    return system_prompt(lang)


def _render(template: str, messages: list[dict[str, str]], *, generation: bool, bos: str, eos: str) -> str:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=generation, bos_token=bos, eos_token=eos
    )


@dataclass(frozen=True)
class BindingsPrompt:
    """What gpt4all's Python bindings take: chat_session(system_prompt=..., prompt_template=...)."""

    system_prompt: str
    """Ingested verbatim (control tokens included) at the start of a session."""
    prompt_template: str
    """str.format template; {0} is the user's message, literal braces doubled."""
    note: str = ""


_USER = "\x00FWYY_USER\x00"
_ANSWER = "\x00FWYY_ANSWER\x00"


@dataclass(frozen=True)
class _Turns:
    system: str
    """The system prefix as rendered (control tokens included), "" when the format has none."""
    user: str
    """One user turn and the generation prompt, the message replaced by _USER."""
    after_answer: str
    """What the template writes after an assistant answer (its end-of-turn text)."""
    note: str


def _turns(chat_template: str, system: str, *, bos: str, eos: str) -> _Turns:
    """Cut a Jinja chat template into system prefix, user turn and answer ending, by rendering it
    with sentinels. BOS is dropped: llama.cpp adds it itself."""
    sys_msg = {"role": "system", "content": system}
    try:
        sys_only = _render(chat_template, [sys_msg], generation=False, bos=bos, eos=eos)
        first = [sys_msg, {"role": "user", "content": _USER}]
        note = ""
    except Exception:  # noqa: BLE001 - a template that rejects a lone system turn (Mistral)
        sys_only = ""
        first = [{"role": "user", "content": system + "\n\n" + _USER}]
        note = "this chat format has no system turn: the system prompt is repeated inside every user turn"
    both = _render(chat_template, first, generation=True, bos=bos, eos=eos)
    full = _render(chat_template, [*first, {"role": "assistant", "content": _ANSWER}], generation=False,
                   bos=bos, eos=eos)  # fmt: skip
    if bos:
        sys_only, both, full = (t.removeprefix(bos) for t in (sys_only, both, full))
    if sys_only and both.startswith(sys_only):
        user = both[len(sys_only) :]
    else:
        user, sys_only = both, ""
        note = note or (
            "this chat format has no separate system turn: the prompt template carries the system "
            "prompt inside every user turn"
        )
    if _USER not in user:
        raise FwyyError("the chat template drops the user's message; cannot build a GPT4All prompt template")
    after = full.split(_ANSWER, 1)[1] if _ANSWER in full else ""
    return _Turns(sys_only, user, after, note)


def bindings_prompt(chat_template: str, system: str, *, bos: str = "", eos: str = "") -> BindingsPrompt:
    """The bindings' system prompt and `{0}` user template (str.format: literal braces doubled)."""
    t = _turns(chat_template, system, bos=bos, eos=eos)
    before, after = t.user.split(_USER, 1)
    template = (
        before.replace("{", "{{").replace("}", "}}") + "{0}" + after.replace("{", "{{").replace("}", "}}")
    )
    return BindingsPrompt(system_prompt=t.system, prompt_template=template, note=t.note)


_PLACEHOLDER = re.compile(r"%[1-2](?![0-9])")


def legacy_prompt(chat_template: str, system: str, *, bos: str = "", eos: str = "") -> tuple[str, str, str]:
    """(promptTemplate, systemPrompt, note) for GPT4All 3.0-3.4.

    The template is one user turn with `%1` for the message and `%2` where the answer goes; the
    app feeds what follows `%2` after each answer, so the end-of-turn text goes there. Those two
    placeholders may appear nowhere else (llmodel_shared.cpp parsePromptTemplate refuses it).
    """
    t = _turns(chat_template, system, bos=bos, eos=eos)
    before, after = t.user.split(_USER, 1)
    for text in (before, after, t.after_answer, t.system):
        found = _PLACEHOLDER.search(text)
        if found:
            raise FwyyError(
                f"the system message contains {found.group()!r}, which GPT4All 3.0-3.4 would take for a "
                "placeholder of its prompt template",
                hint="reword it (e.g. '% 1'), or update GPT4All to 3.5 or later",
            )
    return before + "%1" + after + "%2" + t.after_answer, t.system, t.note


def app_settings(
    version: Version | None, chat_template: str, system: str, *, bos: str = "", eos: str = ""
) -> tuple[dict[str, Any], tuple[str, ...], str]:
    """(keys to set, keys to remove, note) in a model's group for the GPT4All `version`."""
    fmt = settings_format(version)
    if fmt == "legacy":
        template, raw_system, note = legacy_prompt(chat_template, system, bos=bos, eos=eos)
        return {"promptTemplate": template, "systemPrompt": raw_system}, MODERN_KEYS, note
    return {"chatTemplate": chat_template, "systemMessage": system}, LEGACY_KEYS, ""
