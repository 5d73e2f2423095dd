"""OLMo training on token shards: model, data, FSDP2 trainer, checkpoints, evaluation, export.

Importing this package does not import torch; the submodules do.
"""
