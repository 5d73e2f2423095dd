"""Documents and attribute files: JSONL (.gz/.zst) and Parquet, local and s3://, atomic writes."""

from dolma_tools.io.documents import (
    BadLine,
    JsonlWriter,
    dumps,
    iter_documents,
    iter_json_records,
    iter_raw_lines,
    write_parquet,
)
from dolma_tools.io.files import AtomicWriter, compression_of, exists, open_read, open_text
from dolma_tools.io.paths import attribute_path, expand_globs

__all__ = [
    "AtomicWriter", "BadLine", "JsonlWriter", "attribute_path", "compression_of", "dumps", "exists",
    "expand_globs", "iter_documents", "iter_json_records", "iter_raw_lines", "open_read", "open_text",
    "write_parquet",
]
