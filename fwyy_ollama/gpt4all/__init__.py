"""Install a GGUF into GPT4All with the settings its desktop app and Python bindings need.

GPT4All's desktop app (v3) finds models by scanning its model folder for `*.gguf`; a side-loaded
file's id is its file name, and the app keeps per-model overrides in its QSettings INI file under
the group `model-<file name>`. fwyy copies the GGUF there (made loadable: see `gguf_compat`) and
writes that group with the keys the installed app version reads (`prompts`), in Qt's own INI
format with every other group kept byte for byte (`qtini`), in the file the app really reads
(`paths`: on macOS Qt names it after the organization domain, gpt4all.io). `install` is the stage.

Modules: paths, qtini, gguf_compat, prompts, install. Everything other code uses is re-exported here.
"""

from __future__ import annotations

from fwyy_ollama.gpt4all.gguf_compat import (
    DEFAULT_PROFILE_QUANT,
    FILE_TYPES,
    GPT4ALL_KNOWN_PRE,
    GPU_QUANTS,
    PRE_EQUIVALENTS,
    QUANTS,
    compat_changes,
    copy_gguf,
    gguf_metadata,
    gguf_quant,
    requantize,
)
from fwyy_ollama.gpt4all.install import (
    GPT4AllExport,
    check_loads,
    check_model_name,
    export_gpt4all,
    write_settings,
)
from fwyy_ollama.gpt4all.paths import (
    configured_models_dir,
    default_models_dir,
    default_settings_file,
    installed_version,
    parse_app_version,
)
from fwyy_ollama.gpt4all.prompts import (
    LEGACY_KEYS,
    MODERN_KEYS,
    SUPPORTED,
    BindingsPrompt,
    app_settings,
    bindings_prompt,
    legacy_prompt,
    settings_format,
)
from fwyy_ollama.gpt4all.qtini import (
    QtIni,
    qt_escape_key,
    qt_escape_value,
    qt_unescape_key,
    qt_unescape_value,
    qt_variant_string,
)

__all__ = [
    "DEFAULT_PROFILE_QUANT", "FILE_TYPES", "GPT4ALL_KNOWN_PRE", "GPU_QUANTS", "LEGACY_KEYS",
    "MODERN_KEYS", "PRE_EQUIVALENTS", "QUANTS", "SUPPORTED", "BindingsPrompt", "GPT4AllExport",
    "QtIni", "app_settings", "bindings_prompt", "check_loads", "check_model_name", "compat_changes",
    "configured_models_dir", "copy_gguf", "default_models_dir", "default_settings_file",
    "export_gpt4all", "gguf_metadata", "gguf_quant", "installed_version", "legacy_prompt",
    "parse_app_version", "qt_escape_key", "qt_escape_value", "qt_unescape_key", "qt_unescape_value",
    "qt_variant_string", "requantize", "settings_format", "write_settings",
]  # fmt: skip
