from dolma_tools.cli.stage import stage_command
from dolma_tools.tokenize.train_bpe import TrainTokenizerConfig, run_train_tokenizer

command = stage_command(
    "train-tokenizer", TrainTokenizerConfig, run_train_tokenizer,
    help="Train a byte-level BPE tokenizer (GPT-NeoX shape, EOS/pad/PII-mask tokens, vocabulary padded "
         "to a multiple of 128) on documents; writes a tokenizer JSON for `dolma tokens`.")
