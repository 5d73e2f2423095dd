from dataclasses import dataclass

import click

from dolma_tools.cli.stage import stage_command
from dolma_tools.config import option
from dolma_tools.taggers import catalogue, import_tagger_modules


@dataclass
class ListConfig:
    tagger_modules: list[str] = option(default_factory=list, help="modules or .py files defining taggers")
    dryrun: bool = option(False, help="print the resolved config and stop")


def run_list(cfg: ListConfig) -> None:
    import_tagger_modules(cfg.tagger_modules)
    entries = catalogue()
    width = max(len(name) for name in entries)
    for name, cls in entries.items():
        line = cls.description or f"{cls.__module__}.{cls.__qualname__}"
        if cls.options:
            line += f" [options: {', '.join(sorted(cls.options))}]"
        click.echo(f"{name:<{width}}  {line}")


command = stage_command("list", ListConfig, run_list,
                        help="List the tagger catalogue with a line on each (and the options a tagger takes: "
                             "`--taggers NAME:option=value`).")
