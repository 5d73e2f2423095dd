"""`python -m dolma_tools.train [-c train.yaml] --options`: what each rank runs under torchrun.

Multi-node: `torchrun --nnodes M --nproc-per-node N --rdzv-endpoint HOST:PORT -m dolma_tools.train ...`
with the same options as `dolma train`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from dolma_tools.cli import main as cli_main

    cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
