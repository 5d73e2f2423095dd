from dolma_tools.cli.stage import stage_command
from dolma_tools.mixers.config import MixConfig
from dolma_tools.mixers.runner import run_mix

command = stage_command(
    "mix", MixConfig, run_mix,
    help="Join documents with their attributes, filter (JSONPath, jq or Python), replace spans, "
         "sample to target proportions and write <stream>-NNNN.jsonl.gz shards (shuffle: false: one "
         "output per input under <output.path>/documents/). Driven by a config file with Dolma's "
         "`streams` keys.")
