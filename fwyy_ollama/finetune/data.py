"""Prompt/answer tokenization with the loss on the answer only, shared by every backend.

Why not TRL's `assistant_only_loss`: it needs `{% generation %}` markers in the chat template, and
the family templates (fwyy_ollama.chat_families) are the plain ones Ollama's TEMPLATE mirrors. So
we tokenize exactly what inference sees: the prompt is the family's chat template applied to the
system + user turns with the generation prompt (what the Modelfile sends), the completion is the
answer followed by the family's end-of-turn token (what the model must produce, stop included).
The two are tokenized apart, as at inference where the model continues the prompt's tokens; the
labels are -100 on the prompt. The result is a pre-tokenized dataset (input_ids, labels) that TRL
takes as is, which is also what lets padding-free batching work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fwyy_ollama.errors import FwyyError

if TYPE_CHECKING:
    from fwyy_ollama.finetune.backends import Message, TrainJob

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def prompt_length(self) -> int:
        return sum(1 for label in self.labels if label == IGNORE_INDEX)


@dataclass(frozen=True)
class Examples:
    """Tokenized training examples and what happened on the way (for the summary and tests)."""

    examples: list[Example]
    truncated: int
    """Examples whose answer was cut at max_seq_length."""
    dropped: int
    """Examples whose prompt alone filled max_seq_length (nothing left to learn from)."""
    prompt_tokens: int
    answer_tokens: int

    @property
    def dataset(self) -> Any:
        """A datasets.Dataset with input_ids and labels, ready for TRL's SFTTrainer."""
        from datasets import Dataset

        return Dataset.from_dict(
            {"input_ids": [e.input_ids for e in self.examples], "labels": [e.labels for e in self.examples]}
        )


def split_turns(
    tokenizer: Any, messages: Sequence[Message], *, chat_template: str, turn_end: str
) -> tuple[str, str]:
    """(prompt text, completion text) of one conversation whose last turn is the assistant's answer.

    The completion is cut from the template's own rendering of the whole conversation so that
    whatever the template does to the answer (e.g. trimming) is kept; it ends with `turn_end`.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("the conversation must end with the assistant's answer")
    answer = messages[-1].get("content") or ""
    if not answer.strip():
        raise ValueError("the assistant's answer is empty")
    prompt = tokenizer.apply_chat_template(
        list(messages[:-1]), chat_template=chat_template, tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(list(messages), chat_template=chat_template, tokenize=False)
    if full.startswith(prompt):
        completion = full[len(prompt) :]
        cut = completion.rfind(turn_end) if turn_end else -1
        completion = completion[: cut + len(turn_end)] if cut >= 0 else completion.rstrip() + turn_end
    else:  # a template whose prompt is not a prefix of the full rendering: fall back to the plain answer
        completion = answer + turn_end
    return prompt, completion


def _bos_prefix(tokenizer: Any) -> list[int]:
    """The tokens the tokenizer adds in front by itself (a BOS for Llama/Mistral, none for ChatML)."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    n = len(with_special) - len(without)
    return list(with_special[:n]) if n > 0 and with_special[n:] == without else []


def tokenize_conversation(
    tokenizer: Any,
    messages: Sequence[Message],
    *,
    chat_template: str,
    turn_end: str,
    max_seq_length: int,
    bos: list[int] | None = None,
) -> tuple[Example | None, bool]:
    """One example (None if the prompt alone fills max_seq_length) and whether it was truncated."""
    prompt, completion = split_turns(tokenizer, messages, chat_template=chat_template, turn_end=turn_end)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    bos = _bos_prefix(tokenizer) if bos is None else bos
    if bos and prompt_ids[: len(bos)] != bos:
        prompt_ids = bos + prompt_ids
    answer_ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    room = max_seq_length - len(prompt_ids)
    if room < 1:
        return None, False
    truncated = len(answer_ids) > room
    answer_ids = answer_ids[:room]
    return Example(prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids), truncated


def build_examples(tokenizer: Any, job: TrainJob) -> Examples:
    """Tokenize every conversation of the job with the family's template (set on the tokenizer too)."""
    tokenizer.chat_template = job.chat_template
    return tokenize_all(
        tokenizer,
        job.conversations,
        chat_template=job.chat_template,
        turn_end=job.turn_end,
        max_seq_length=job.profile.train.max_seq_length,
    )


def tokenize_all(
    tokenizer: Any,
    conversations: Sequence[Sequence[Message]],
    *,
    chat_template: str,
    turn_end: str,
    max_seq_length: int,
) -> Examples:
    bos = _bos_prefix(tokenizer)
    out: list[Example] = []
    truncated = dropped = prompt_tokens = answer_tokens = 0
    for i, messages in enumerate(conversations):
        try:
            example, cut = tokenize_conversation(
                tokenizer,
                messages,
                chat_template=chat_template,
                turn_end=turn_end,
                max_seq_length=max_seq_length,
                bos=bos,
            )
        except ValueError as exc:
            raise FwyyError(f"training example {i + 1}: {exc}") from None
        if example is None:
            dropped += 1
            continue
        truncated += cut
        out.append(example)
        n_prompt = example.prompt_length
        prompt_tokens += n_prompt
        answer_tokens += len(example.input_ids) - n_prompt
    if not out:
        raise FwyyError(
            f"no training example fits in max_seq_length={max_seq_length} tokens "
            f"({dropped} prompts alone are longer)",
            hint="raise train.max_seq_length in the profile or shorten the records",
        )
    return Examples(out, truncated, dropped, prompt_tokens, answer_tokens)
