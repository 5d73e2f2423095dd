from dolma_tools.cli.stage import stage_command
from dolma_tools.taggers.fasttext_training import TrainFastTextConfig, run_train_fasttext

command = stage_command(
    "train-fasttext", TrainFastTextConfig, run_train_fasttext,
    help="Train a fastText classifier from labelled JSONL (text + label fields); apply it with "
         "`dolma tag --taggers fasttext_classifier:model=PATH`.")
