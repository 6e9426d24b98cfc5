"""Security datasets: Alpaca records, the seeded generator, the importer, splits and statistics.

Submodules: records (format, validation, chat messages), catalog + augment + instructions +
generate (the generator), importer (labeled CSV/JSONL), split (groups and leak-free splits),
stats, hf (datasets.Dataset for training).
"""

from fwyy_ollama.dataset.records import (
    CATEGORIES,
    KEYS,
    Problem,
    load_records,
    record_category,
    record_label,
    record_lang,
    to_messages,
    validate_files,
    write_records,
)

__all__ = [
    "CATEGORIES",
    "KEYS",
    "Problem",
    "load_records",
    "record_category",
    "record_label",
    "record_lang",
    "to_messages",
    "validate_files",
    "write_records",
]
