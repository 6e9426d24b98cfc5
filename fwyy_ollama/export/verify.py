"""Check an exported GGUF with llama.cpp against the HF model it came from.

Three questions: does llama.cpp load it; does it tokenize hard strings (Chinese, code, emoji,
odd whitespace, the chat template's special tokens) exactly as the HF tokenizer does; and does it
compute the same thing. For 16/32-bit files the next-token logits must match the HF model's
closely at every position; for quantized files the top-1 tokens must mostly agree.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fwyy_ollama.errors import require

TOKENIZER_STRINGS: tuple[str, ...] = (
    "请分析这段日志：用户 admin 在 03:14 从 10.0.0.7 登录失败 37 次。",
    "SQL 注入：' OR 1=1 --；跨站脚本 <script>alert(1)</script>",
    "def check(pw: str) -> bool:\n    return len(pw) >= 12 and any(c.isdigit() for c in pw)  # 检查\n",
    "for (int i = 0; i < n; ++i) { buf[i] ^= 0x5A; }\r\n",
    "🚀 😶‍🌫️ ✅ 🦙🦙 🔐🛡️ 👩🏽‍💻",
    "   leading spaces\t\ttabs\n\n\nnewlines  trailing   ",
    "\u3000全角空格\u00a0nbsp\u200bzero-width 3.14159 1234567890",
    "It's 'quoted' — “curly” and «angled» ... ?!",
)

PROMPTS: tuple[str, ...] = (
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "网络安全的三个基本要素是",
    "An SQL injection attack works by",
)

# thresholds: logits of a 16/32-bit export must follow the HF model this closely; top-1 may flip
# where a tiny random model has near-ties, so closeness is judged by cosine first
CLOSE_COSINE = {"f32": 0.9999, "f16": 0.999, "bf16": 0.995}
TOP1_MIN = {"f32": 0.95, "f16": 0.9, "bf16": 0.9, "q8_0": 0.85}
TOP1_MIN_DEFAULT = 0.6


@dataclass(frozen=True)
class TokenCase:
    text: str
    ok: bool
    hf: list[int]
    gguf: list[int]


@dataclass
class VerifyReport:
    gguf: Path
    quant: str
    loaded: bool = False
    tokenization: list[TokenCase] = field(default_factory=list)
    min_cosine: float | None = None
    max_abs_diff: float | None = None
    top1_agreement: float | None = None
    positions: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.loaded and not self.failures

    @property
    def tokenization_ok(self) -> bool:
        return bool(self.tokenization) and all(c.ok for c in self.tokenization)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["gguf"] = str(self.gguf)
        out["ok"] = self.ok
        out["tokenization"] = [
            {"text": c.text, "ok": c.ok} | ({} if c.ok else {"hf": c.hf, "gguf": c.gguf})
            for c in self.tokenization
        ]
        return out


def _special_strings(tokenizer: Any) -> list[str]:
    """Strings made of the tokenizer's own special tokens, as a chat prompt would hold them."""
    out = []
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": "你是安全分析师。"}, {"role": "user", "content": "hi 👋"}],
            tokenize=False,
            add_generation_prompt=True,
        )
        out.append(str(text))
    except Exception:  # noqa: BLE001 - a model without a template still gets the other checks
        pass
    specials = [t for t in (tokenizer.bos_token, tokenizer.eos_token) if t]
    if specials:
        out.append(" x ".join(specials) + " 结束")
    return out


def _load_hf(model_dir: Path, adapter_dir: Path | None) -> tuple[Any, Any]:
    transformers = require("transformers", "train", "--verify (the HF reference model)")
    torch = require("torch", "train", "--verify (the HF reference model)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.utils.logging.disable_progress_bar()
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.float32, local_files_only=True
    )
    if adapter_dir is not None:
        peft = require("peft", "train", "--verify of an adapter export")
        model = peft.PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model.eval()
    return tok, model


def verify_gguf(
    gguf: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str],
    adapter_dir: str | os.PathLike[str] | None = None,
    quant: str = "f16",
    strings: tuple[str, ...] = TOKENIZER_STRINGS,
    prompts: tuple[str, ...] = PROMPTS,
    threads: int | None = None,
) -> VerifyReport:
    """Load `gguf` in llama.cpp and compare it with the HF model (plus adapter) it was made from."""
    llama_cpp = require("llama_cpp", "llama", "--verify (loading the GGUF in llama.cpp)")
    torch = require("torch", "train", "--verify (the HF reference model)")
    report = VerifyReport(Path(gguf), quant)
    tok, model = _load_hf(Path(model_dir), Path(adapter_dir) if adapter_dir else None)
    try:
        llm = llama_cpp.Llama(
            model_path=str(gguf),
            n_ctx=512,
            n_batch=512,
            logits_all=True,
            verbose=False,
            n_threads=threads or max(1, min(4, os.cpu_count() or 1)),
        )
    except (ValueError, RuntimeError) as exc:
        report.failures.append(f"llama.cpp cannot load the file: {exc}")
        return report
    report.loaded = True
    try:
        add_bos = bool(llm._model.add_bos_token()) if hasattr(llm._model, "add_bos_token") else False
        # -- tokenization: the HF tokenizer with its own special-token handling is the truth
        for text in (*strings, *_special_strings(tok)):
            hf_ids = list(tok.encode(text, add_special_tokens=True))
            gg = list(llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))
            case = TokenCase(text, hf_ids == gg, hf_ids, gg)
            report.tokenization.append(case)
            if not case.ok:
                report.failures.append(f"tokenization differs from HF on {text[:40]!r}")
        # -- logits at every position of a few prompts
        cosines, diffs, agree, total = [], [], 0, 0
        for prompt in prompts:
            ids = list(tok.encode(prompt, add_special_tokens=True))
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0].float().numpy()
            llm.reset()
            llm.eval(ids)
            got = np.array(llm.scores[: len(ids)], dtype=np.float32)
            n_vocab = min(ref.shape[1], got.shape[1])
            ref, got = ref[:, :n_vocab], got[:, :n_vocab]
            num = (ref * got).sum(axis=1)
            den = np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12
            cosines.extend((num / den).tolist())
            diffs.append(float(np.abs(ref - got).max()))
            agree += int((ref.argmax(axis=1) == got.argmax(axis=1)).sum())
            total += len(ids)
        report.min_cosine = float(min(cosines))
        report.max_abs_diff = float(max(diffs))
        report.top1_agreement = agree / total if total else 0.0
        report.positions = total
        need_cos = CLOSE_COSINE.get(quant)
        if need_cos is not None and report.min_cosine < need_cos:
            report.failures.append(
                f"logits differ from the HF model (min cosine {report.min_cosine:.5f} < {need_cos})"
            )
        need_top1 = TOP1_MIN.get(quant, TOP1_MIN_DEFAULT)
        if report.top1_agreement < need_top1:
            report.failures.append(
                f"top-1 tokens agree with the HF model at only {report.top1_agreement:.0%} of "
                f"{total} positions (want ≥ {need_top1:.0%})"
            )
    finally:
        if hasattr(llm, "close"):
            llm.close()
    return report
