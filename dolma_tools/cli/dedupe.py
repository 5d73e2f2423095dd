from dolma_tools.cli.stage import stage_command
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.runner import run_dedupe

command = stage_command(
    "dedupe", DedupeConfig, run_dedupe,
    help="Mark duplicate documents/paragraphs (Bloom filter), near-duplicate documents (MinHash-LSH) "
         "and evaluation-set overlap; writes attributes/<dedupe.name>/ mirroring the documents.")
