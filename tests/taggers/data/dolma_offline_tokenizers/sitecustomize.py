"""Makes Dolma's `Tokenizer.from_pretrained` read OLMo's bundled tokenizer files, offline.

Used only by generate_dolma_tokenizer_taggers.sh: put on PYTHONPATH (so every worker process Dolma
starts has it too) with DOLMA_TOOLS_TOKENIZER_DIR naming `olmo_eval/tokenizers/`. A Hub name
becomes `<dir>/<owner>_<name>.json`; a name without such a file fails rather than downloading, so
the reference files are known to come from the same JSONs dolma-tools loads.
"""

import os

import tokenizers

_DIR = os.environ.get("DOLMA_TOOLS_TOKENIZER_DIR")


def _from_bundled_file(identifier: str, *args, **kwargs) -> tokenizers.Tokenizer:
    path = os.path.join(_DIR or "", identifier.replace("/", "_") + ".json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{identifier}: no bundled tokenizer file {path}; refusing to download")
    return tokenizers.Tokenizer.from_file(path)


if _DIR:
    tokenizers.Tokenizer.from_pretrained = staticmethod(_from_bundled_file)
