"""GGUF export: merge a LoRA into its base, convert, quantize and check, with pip-installable parts.

Modules: merge (weights + LoRA), vocab (tokenizer keys), convert (the streaming writer), quantize
(numpy types and llama.cpp's K-quants), verify (llama.cpp against the HF model), output (files
that appear only when complete), api (export_gguf).
"""

from __future__ import annotations

from fwyy_ollama.export.api import ExportResult, export_gguf
from fwyy_ollama.export.quantize import DEFAULT_QUANT, QUANTS

__all__ = ["DEFAULT_QUANT", "QUANTS", "ExportResult", "export_gguf"]
