"""Chat families: how a conversation becomes the prompt text a model was trained on.

A profile names its family (chatml, llama3, mistral); training renders conversations with the
family's real Jinja chat template (as the base model ships it), and the Modelfile carries the
matching Ollama TEMPLATE (Go text/template) and stop strings. tests/test_templates*.py proves
that both give the same text under Go's own text/template, so `ollama run` prompts the model
exactly as training did. The family always comes from the profile, never from the model's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.resources import templates_dir

FAMILIES = ("chatml", "llama3", "mistral")


@dataclass(frozen=True)
class ChatFamily:
    name: str
    source: str
    """Which model ships hf_chat_template (its tokenizer_config.json's chat_template)."""
    stop: tuple[str, ...]
    """Ollama stop strings: the turn markers a model must not write past."""
    eos_token: str
    """The token that ends an assistant turn (what training appends after each answer)."""
    bos_token: str
    """The BOS text the Jinja template writes first; llama.cpp adds it as a token instead, so the
    Ollama TEMPLATE leaves it out ("" when the family has none)."""
    trimmed_roles: tuple[str, ...]
    """Roles whose content the Jinja template strips (Llama 3: every message, Mistral: the
    assistant's). Go's text/template cannot trim, so what goes to Ollama is stripped beforehand
    (`prepare_messages`); then the Go TEMPLATE renders what the Jinja renders."""

    @property
    def trims_content(self) -> bool:
        return bool(self.trimmed_roles)

    def prepare_messages(self, messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Messages for Ollama: contents stripped where the family's Jinja strips them."""
        out = []
        for m in messages:
            msg = dict(m)
            if msg.get("role") in self.trimmed_roles and isinstance(msg.get("content"), str):
                msg["content"] = msg["content"].strip()
            out.append(msg)
        return out

    def prepare_system(self, system: str) -> str:
        """A SYSTEM text as the family's Jinja would render it (Ollama sends it as a system message)."""
        return system.strip() if "system" in self.trimmed_roles else system

    @property
    def hf_chat_template(self) -> str:
        """The family's Jinja chat template, for training and the GGUF's tokenizer.chat_template.

        chatml and llama3 are the source model's own. mistral is Mistral-7B-Instruct-v0.3's without
        its function-calling branches: a GGUF Jinja that mentions tools makes Ollama 0.30.11+ run
        it natively instead of the Modelfile TEMPLATE (server/images.go); this one renders the same
        text for system/user/assistant conversations, so Ollama keeps the proven TEMPLATE.

        chatml stays Qwen2-Instruct's, which has no tools, although the chatml TEMPLATE now renders
        Qwen2.5's tools, tool calls and tool results: Ollama reads more capabilities off the TEMPLATE
        than off this Jinja and runs the TEMPLATE; the Jinja is shared with SmolLM2 and Qwen2, whose
        own templates have no tools; and training has no tools, where both render the same text.
        """
        return _read(f"chat_template.{self.name}.jinja")

    @property
    def ollama_template(self) -> str:
        """The Ollama TEMPLATE (Go text/template) that renders like hf_chat_template."""
        return _read(f"ollama_template.{self.name}.gotmpl")


_FAMILIES: dict[str, ChatFamily] = {
    "chatml": ChatFamily(
        name="chatml",
        source="Qwen/Qwen2-7B-Instruct",
        stop=("<|im_start|>", "<|im_end|>", "<|endoftext|>"),
        eos_token="<|im_end|>",
        bos_token="",
        trimmed_roles=(),
    ),
    "llama3": ChatFamily(
        name="llama3",
        source="meta-llama/Meta-Llama-3-8B-Instruct",
        stop=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        eos_token="<|eot_id|>",
        bos_token="<|begin_of_text|>",
        trimmed_roles=("system", "user", "assistant"),
    ),
    "mistral": ChatFamily(
        name="mistral",
        source="mistralai/Mistral-7B-Instruct-v0.3",
        stop=("[INST]", "[/INST]", "</s>"),
        eos_token="</s>",
        bos_token="<s>",
        trimmed_roles=("assistant",),
    ),
}


@cache
def _read(name: str) -> str:
    path = templates_dir() / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FwyyError(f"{path}: chat template missing; reinstall fwyy-ollama") from None


def get_family(name: str) -> ChatFamily:
    """The chat family `name` (chatml, llama3 or mistral)."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise FwyyError(f"chat family {name!r} is not one of {', '.join(FAMILIES)}") from None


def family_for_ollama_template(template: str) -> ChatFamily | None:
    """The family whose Ollama TEMPLATE this is (exactly), or None for any other template."""
    for fam in _FAMILIES.values():
        if template and template == fam.ollama_template:
            return fam
    return None
