"""The `dolma` command: `dolma [-c CONFIG] SUBCOMMAND [--dotted.options ...]`.

Subcommands live one per module in this package and are imported only when invoked, so
`dolma --help` is instant and never imports Ray, torch or a model.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from dolma_tools import __version__
from dolma_tools.errors import DataError, UserError

# name -> (module, one-line help); aliases map to a name
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "tag": ("dolma_tools.cli.tag", "Run taggers over documents; write attribute files beside them."),
    "list": ("dolma_tools.cli.list_taggers", "List the tagger catalogue."),
    "dedupe": ("dolma_tools.cli.dedupe", "Bloom-filter exact dedup, MinHash near-dedup, decontamination."),
    "mix": ("dolma_tools.cli.mix", "Filter, replace spans and mix sources into sized output shards."),
    "tokens": ("dolma_tools.cli.tokens", "Tokenize documents into uint16/uint32 memmap shards (alias: tokenize)."),
    "stats": ("dolma_tools.cli.stats", "Corpus report: JSON and an HTML page with plots (alias: stat)."),
    "train": ("dolma_tools.cli.train", "Train an OLMo-architecture model on token shards (FSDP2)."),
    "train-fasttext": ("dolma_tools.cli.train_fasttext", "Train a fastText classifier from labelled JSONL."),
    "train-tokenizer": ("dolma_tools.cli.train_tokenizer", "Train a BPE tokenizer on a corpus."),
}
ALIASES = {"tokenize": "tokens", "stat": "stats"}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        name = ALIASES.get(name, name)
        if name not in SUBCOMMANDS:
            return None
        module, _ = SUBCOMMANDS[name]
        return importlib.import_module(module).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, text) for name, (_, text) in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config", type=str, default=None,
              help="YAML or JSON config file (Dolma's keys); may also follow the subcommand.")
@click.version_option(__version__, prog_name="dolma-tools")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """dolma-tools: Dolma-compatible data curation and OLMo training, on Ray."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dolma_tools.runtime.executor import use_ray_token_if_any

    use_ray_token_if_any()  # before anything imports Ray
    try:
        cli.main(args=argv, prog_name="dolma", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except DataError as exc:
        hint = " (run without --strict to skip and count bad lines)" if exc.skippable else ""
        click.echo(f"error: bad input: {exc}{hint}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
