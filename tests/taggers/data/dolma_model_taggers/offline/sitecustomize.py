"""Makes Dolma 1.2.1 read local files where it would download a model or a tokenizer, offline.

Used only by generate_dolma_model_taggers.sh: put on PYTHONPATH (so every worker process Dolma
starts has it too) with DOLMA_TOOLS_OFFLINE_FILES, a JSON object from what Dolma fetches (a
fastText model's URL, a Hub tokenizer's name) to a local file. Anything else Dolma asks for
fails rather than downloading, so the reference outputs are known to come from the same files
the tests give dolma-tools, and the URLs our error messages name are the ones Dolma uses.
"""

import json
import os

_FILES = json.loads(os.environ.get("DOLMA_TOOLS_OFFLINE_FILES") or "{}")


def _local(name: str) -> str:
    if name not in _FILES:
        raise FileNotFoundError(f"{name}: no local copy in DOLMA_TOOLS_OFFLINE_FILES; refusing to download")
    return _FILES[name]


def _patch() -> None:
    import dolma.core.ft_tagger
    import tokenizers

    # BaseFastTextTagger resolves its model through the `cached_path` it imported
    dolma.core.ft_tagger.cached_path = lambda path, *args, **kwargs: _local(str(path))
    tokenizers.Tokenizer.from_pretrained = staticmethod(
        lambda identifier, *args, **kwargs: tokenizers.Tokenizer.from_file(_local(identifier)))


if _FILES:
    _patch()
