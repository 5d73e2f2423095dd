from dolma_tools.cli.stage import stage_command
from dolma_tools.tokenize.config import TokensConfig
from dolma_tools.tokenize.runner import run_tokens

command = stage_command(
    "tokens", TokensConfig, run_tokens,
    help="Tokenize documents into headerless uint16/uint32 memmap shards (part-<g>-<k>.npy), a "
         ".csv.gz of (start,end,id,src,loc) beside each, and a tokens.json manifest for the trainer.")
