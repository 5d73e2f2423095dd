"""Build click commands from stage config dataclasses.

Options are not declared to click one by one: Dolma's dotted flags (`--bloom_filter.file`) and
list flags (`--taggers a b c`) are parsed by `dolma_tools.config` from the dataclass schema, so a
stage adds an option by adding a field.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import click
import yaml

from dolma_tools.config import build_config, describe_options, to_dict
from dolma_tools.errors import NotImplementedStageError

CONTEXT = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}


def split_config_flag(args: list[str]) -> tuple[str | None, list[str]]:
    """Accept `-c FILE` / `--config FILE` after the subcommand too (Dolma only takes it before)."""
    config, rest, i = None, [], 0
    while i < len(args):
        if args[i] in ("-c", "--config") and i + 1 < len(args):
            config = args[i + 1]
            i += 2
        elif args[i].startswith("--config="):
            config = args[i].split("=", 1)[1]
            i += 1
        else:
            rest.append(args[i])
            i += 1
    return config, rest


class StageCommand(click.Command):
    def __init__(self, *args: Any, config_cls: type, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config_cls = config_cls

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [("-c, --config FILE", "YAML or JSON config file with the keys below")]
        rows += [(flag, f"{help_} ({tp})") for flag, tp, help_ in describe_options(self.config_cls)]
        with formatter.section("Options (config keys; flags override the file)"):
            formatter.write_dl(rows)


def stage_command(name: str, config_cls: type, run: Callable[[Any], Any], help: str) -> click.Command:
    """A subcommand that builds `config_cls` from -c and flags, then calls `run(config)`."""

    @click.pass_context
    def callback(ctx: click.Context) -> None:
        local_config, args = split_config_flag(list(ctx.args))
        config_path = local_config or (ctx.obj or {}).get("config")
        cfg = build_config(config_cls, config_path, args)
        if getattr(cfg, "dryrun", False):
            click.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False))
            return
        run(cfg)

    return StageCommand(name, callback=callback, help=help, context_settings=CONTEXT, config_cls=config_cls)


def not_implemented(name: str, issue: str) -> click.Command:
    """A registered subcommand that is not built yet: it says so and exits 2."""

    @click.pass_context
    def callback(ctx: click.Context) -> None:
        raise NotImplementedStageError(f"`dolma {name}` is not implemented yet ({issue})")

    return click.Command(name, callback=callback, context_settings=CONTEXT,
                         help=f"Not implemented yet ({issue}).")


def echo_err(message: str) -> None:
    print(message, file=sys.stderr)
