"""Chat families: how a conversation becomes the prompt text a model was trained on.

A profile names its family (chatml, llama3, mistral); training renders conversations with the
family's real Jinja chat template (as the base model ships it), and the Modelfile carries the
matching Ollama TEMPLATE (Go text/template) and stop strings. tests/test_templates*.py proves
that both give the same text under Go's own text/template, so `ollama run` prompts the model
exactly as training did. The family always comes from the profile, never from the model's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

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
    trims_content: bool
    """The Jinja template strips message contents (Llama 3: all, Mistral: assistant). Go templates
    cannot trim, so callers should send stripped contents to Ollama."""

    @property
    def hf_chat_template(self) -> str:
        """The family's real Jinja chat template, for tokenizer.chat_template."""
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
        trims_content=False,
    ),
    "llama3": ChatFamily(
        name="llama3",
        source="meta-llama/Meta-Llama-3-8B-Instruct",
        stop=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        eos_token="<|eot_id|>",
        bos_token="<|begin_of_text|>",
        trims_content=True,
    ),
    "mistral": ChatFamily(
        name="mistral",
        source="mistralai/Mistral-7B-Instruct-v0.3",
        stop=("[INST]", "[/INST]", "</s>"),
        eos_token="</s>",
        bos_token="<s>",
        trims_content=True,
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
