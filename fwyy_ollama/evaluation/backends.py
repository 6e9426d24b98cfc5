"""Open a resolved spec as a chat Backend: Ollama and llama.cpp from fwyy_ollama.runtime, and a
transformers (+ PEFT) backend for a model before it is merged and exported.

The transformers backend lives here rather than in runtime because only the eval needs it: it
answers the "did the LoRA learn anything?" question without a GGUF export in between. It takes no
grammar (`accepts_grammar` stays False), so constrained decoding does not apply to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import require
from fwyy_ollama.evaluation.specs import ModelSpec

DEFAULT_MAX_TOKENS = 384
"""Longest free (unconstrained) answer, in tokens."""


def _transformers_backend_class() -> type:
    from fwyy_ollama.runtime import Backend

    class HFBackend(Backend):
        """transformers (+ PEFT adapter) on the CPU: the model before it is merged and exported."""

        def __init__(self, base: Path, adapter: Path | None) -> None:
            require("transformers", "train", "Evaluating a Hugging Face model")
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            tok_dir = (
                adapter if adapter is not None and (adapter / "tokenizer_config.json").is_file() else base
            )
            self.tokenizer = AutoTokenizer.from_pretrained(tok_dir)
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
            if adapter is not None:
                require("peft", "train", "Evaluating a LoRA adapter")
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter)
            model.eval()
            self._model = model
            super().__init__(name="hf", model=(adapter or base).name, source=str(adapter or base))

        def chat(
            self,
            messages: Sequence[Mapping[str, str]],
            *,
            stream: bool = True,
            format: Mapping[str, Any] | str | None = None,
            options: Mapping[str, Any] | None = None,
        ) -> Iterator[str]:
            import torch

            opts = self._options(options)
            ids = self.tokenizer.apply_chat_template(
                [dict(m) for m in messages], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            temperature = float(opts.get("temperature", 0) or 0)
            with torch.no_grad():
                out = self._model.generate(
                    **ids,
                    max_new_tokens=int(opts.get("num_predict", DEFAULT_MAX_TOKENS)),
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                )
            yield self.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

        def count_tokens(self, text: str) -> int:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    return HFBackend


def open_model(spec: ModelSpec, *, n_ctx: int | None = None) -> Any:
    """An open runtime Backend for a resolved spec (not a detector)."""
    from fwyy_ollama.runtime import open_backend

    if spec.kind == "ollama":
        return open_backend(spec.target, backend="ollama", n_ctx=n_ctx)
    if spec.kind == "gguf":
        return open_backend(None, backend="local", gguf=spec.target, n_ctx=n_ctx)
    if spec.kind == "hf":
        return _transformers_backend_class()(Path(spec.target), spec.adapter)
    raise ValueError(spec.kind)
