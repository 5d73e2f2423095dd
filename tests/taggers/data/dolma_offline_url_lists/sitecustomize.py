"""Makes Dolma 1.2.1's URL taggers read small local lists instead of downloading theirs.

Used only by generate_dolma_url_taggers.sh: put on PYTHONPATH (so every worker process Dolma starts
has it too) with DOLMA_TOOLS_URL_LISTS naming a JSON file {tagger name: [list file, ...]} (paths
relative to that file's `lists/` sibling folder). Each named tagger class gets those files as its
list paths; any other remote path fails rather than downloading, so the reference outputs are known
to come from the same files the dolma-tools tests pass with `list=`.
"""

import json
import os

_MAPPING = os.environ.get("DOLMA_TOOLS_URL_LISTS")


def _refuse_remote(path: str) -> str:
    if "://" in path:
        raise FileNotFoundError(f"{path}: no local copy given; refusing to download")
    return path


if _MAPPING:
    import dolma.taggers.url as dolma_url
    from dolma.core.registry import TaggerRegistry

    dolma_url.cached_path = _refuse_remote
    lists_dir = os.path.join(os.path.dirname(os.path.abspath(_MAPPING)), "lists")
    with open(_MAPPING) as f:
        for name, files in json.load(f).items():
            TaggerRegistry.get(name).BLOCKLIST_PATHS = [os.path.join(lists_dir, p) for p in files]
