"""Configuration: YAML/JSON files plus dotted command-line overrides, validated into dataclasses.

Precedence is Dolma's: dataclass defaults < config file < flags. Every stage describes its
options as a (possibly nested) dataclass; this module turns `--bloom_filter.file x`,
`--no-bloom_filter.read_only` or `--taggers a b c` into values of the right type and reports
problems as `ConfigError`s that name the key and the expected type.

Field metadata understood here:
- ``help``: one line shown by ``dolma SUBCOMMAND --help``;
- ``required``: the key must be set by the file or a flag;
- ``aliases``: other accepted key names (e.g. Dolma's documented ``threshold``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Mapping, Sequence, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from dolma_tools.errors import ConfigError

T = TypeVar("T")


def option(default: Any = MISSING, *, help: str = "", required: bool = False,
           aliases: Sequence[str] = (), default_factory: Any = MISSING, minimum: float | None = None,
           choices: Sequence[Any] = ()) -> Any:
    """A dataclass field carrying CLI help and validation metadata: `minimum` (for numbers) and
    `choices` are checked when the config is built, before any work starts."""
    metadata = {"help": help, "required": required, "aliases": tuple(aliases), "minimum": minimum,
                "choices": tuple(choices)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    if default is MISSING:
        return field(default=None, metadata={**metadata, "required": True})
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class WorkDirConfig:
    input: str | None = option(None, help="accepted for Dolma compatibility; unused")
    output: str | None = option(None, help="accepted for Dolma compatibility; unused")


@dataclass
class RuntimeConfig:
    """Options every stage shares: parallelism, Ray, resume, bad-input policy."""

    processes: int | None = option(None, help="Ray CPUs to use (default: all cores)", minimum=1)
    ray_address: str | None = option(None, help="join this Ray cluster (or set RAY_ADDRESS)")
    ignore_existing: bool = option(False, help="redo files whose outputs already exist")
    strict: bool = option(False, help="fail on the first malformed line instead of skipping it")
    retries: int = option(2, help="retries per file after a worker failure", minimum=0)
    debug: bool = option(False, help="run in-process without Ray (for debugging)")
    executor: str = option("ray", help="ray: an embedded Ray on this machine, or the cluster at --ray_address; "
                                       "local: worker processes forked from this one, without Ray's start-up "
                                       "(seconds on a small machine); one machine only",
                        choices=("ray", "local"))
    dryrun: bool = option(False, help="print the resolved config and stop")
    work_dir: WorkDirConfig = option(default_factory=WorkDirConfig)

    @classmethod
    def option_names(cls) -> set[str]:
        """The runtime options: how a stage runs, never what its outputs hold."""
        return {f.name for f in fields(RuntimeConfig)}

    def local_pool(self) -> bool:
        """Run on worker processes forked from this one (`--executor local`) instead of Ray?"""
        import multiprocessing

        if self.executor not in ("ray", "local"):
            raise ConfigError(f"executor: {self.executor!r} is not one of 'ray', 'local'")
        if self.executor == "ray":
            return False
        if self.ray_address or os.environ.get("RAY_ADDRESS"):
            raise ConfigError("--executor local runs on this machine only: drop --ray_address (and RAY_ADDRESS)")
        return "fork" in multiprocessing.get_all_start_methods()


# ----------------------------------------------------------------------------------------------
# Schema introspection


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def type_name(tp: Any) -> str:
    tp, optional = _strip_optional(tp)
    origin = get_origin(tp)
    if tp is bool:
        name = "a boolean"
    elif tp is int:
        name = "an integer"
    elif tp is float:
        name = "a number"
    elif tp is str:
        name = "a string"
    elif origin in (list, Sequence, typing.List):
        (inner,) = get_args(tp) or (Any,)
        name = f"a list of {type_name(inner).split(' ', 1)[-1]}s"
    elif origin in (dict, Mapping, typing.Dict):
        name = "a mapping"
    elif is_dataclass(tp):
        name = "a mapping"
    elif get_origin(tp) is typing.Literal:
        name = "one of " + ", ".join(repr(a) for a in get_args(tp))
    else:
        name = getattr(tp, "__name__", str(tp))
    return name + (" or null" if optional else "")


def flat_schema(cls: type, prefix: str = "") -> dict[str, tuple[Any, dataclasses.Field]]:
    """Dotted key -> (type, field) for every leaf of a nested config dataclass."""
    out: dict[str, tuple[Any, dataclasses.Field]] = {}
    hints = _hints(cls)
    for f in fields(cls):
        tp = hints[f.name]
        inner, _ = _strip_optional(tp)
        key = prefix + f.name
        if is_dataclass(inner):
            out.update(flat_schema(inner, key + "."))
        else:
            out[key] = (tp, f)
    return out


# ----------------------------------------------------------------------------------------------
# Coercion of raw values (from YAML or from flag strings) into typed values

_BOOL_WORDS = {"true": True, "yes": True, "1": True, "on": True,
               "false": False, "no": False, "0": False, "off": False}


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert `value` to `tp`, raising a ConfigError naming `key` and the expected type."""
    inner, optional = _strip_optional(tp)
    if value is None or (isinstance(value, str) and value in ("null", "None", "~") and (optional or inner is not str)):
        if optional or inner is Any:
            return None
        raise ConfigError(f"config key `{key}`: expected {type_name(tp)}, got null")
    if inner is Any:
        return value
    origin = get_origin(inner)
    try:
        if inner is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.lower()]
            raise ValueError
        if inner is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                return int(float(value)) if re.fullmatch(r"[+-]?\d+(\.0*)?([eE]\+?\d+)?", value.strip()) else int(value)
            raise ValueError
        if inner is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if inner is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is typing.Literal:
            if value in get_args(inner):
                return value
            raise ValueError
        if origin in (list, Sequence, typing.List, tuple):
            (elem,) = get_args(inner)[:1] or (Any,)
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return [coerce(f"{key}[{i}]", v, elem) for i, v in enumerate(value)]
        if origin in (dict, Mapping, typing.Dict):
            if not isinstance(value, Mapping):
                raise ValueError
            kt, vt = get_args(inner) or (Any, Any)
            return {coerce(f"{key}.{k}", k, kt): coerce(f"{key}.{k}", v, vt) for k, v in value.items()}
        if is_dataclass(inner):
            if isinstance(value, inner):
                return value
            if not isinstance(value, Mapping):
                raise ValueError
            return from_dict(inner, value, prefix=key + ".")
    except ConfigError:
        raise
    except (ValueError, TypeError):
        raise ConfigError(
            f"config key `{key}`: expected {type_name(tp)}, got {value!r}") from None
    return value


def _field_names(f: dataclasses.Field) -> tuple[str, ...]:
    return (f.name, *f.metadata.get("aliases", ()))


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build a config dataclass from a nested mapping; unknown keys are errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key `{prefix.rstrip('.') or '<root>'}`: expected a mapping, got {data!r}")
    hints = _hints(cls)
    by_name: dict[str, dataclasses.Field] = {}
    for f in fields(cls):
        for name in _field_names(f):
            by_name[name] = f
    kwargs: dict[str, Any] = {}
    for raw_key, value in data.items():
        name = str(raw_key).replace("-", "_")
        f = by_name.get(name)
        if f is None:
            known = ", ".join(sorted(x.name for x in fields(cls)))
            raise ConfigError(f"unknown config key `{prefix}{raw_key}` (known keys here: {known})")
        kwargs[f.name] = coerce(prefix + f.name, value, hints[f.name])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - schema bug, not a user error
        raise ConfigError(f"config `{prefix or cls.__name__}`: {exc}") from None


def check_required(cfg: Any, prefix: str = "") -> None:
    """Raise a ConfigError for the first required field left unset, or a value out of range."""
    hints = _hints(type(cfg))
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        inner, _ = _strip_optional(hints[f.name])
        if f.metadata.get("required") and (value is None or value == [] or value == ""):
            flag = "--" + prefix + f.name
            raise ConfigError(f"missing required config key `{prefix}{f.name}` (set it in the config file or with {flag})")
        _check_range(prefix + f.name, value, f.metadata)
        if is_dataclass(inner) and value is not None and not isinstance(value, type):
            check_required(value, prefix + f.name + ".")


def _check_range(key: str, value: Any, metadata: Mapping[str, Any]) -> None:
    minimum, choices = metadata.get("minimum"), metadata.get("choices")
    if value is None:
        return
    if minimum is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum:g}, got {value}")
    if choices and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(repr(c) for c in choices)}")


# ----------------------------------------------------------------------------------------------
# Command-line overrides


def _set_dotted(target: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = target.get(part)
        if not isinstance(node, dict):
            node = target[part] = {}
        target = node
    target[parts[-1]] = value


def parse_overrides(cls: type, args: Sequence[str]) -> dict[str, Any]:
    """Parse `--dotted.key value`, `--flag`/`--no-flag` and `--list a b c` into a nested dict."""
    schema = flat_schema(cls)
    aliases: dict[str, str] = {}
    for key, (_, f) in schema.items():
        head = key.rsplit(".", 1)[0] + "." if "." in key else ""
        for alias in f.metadata.get("aliases", ()):
            aliases[head + alias] = key
    out: dict[str, Any] = {}
    i = 0
    args = list(args)
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument {token!r}: options look like --key value")
        body = token[2:]
        inline: str | None = None
        if "=" in body:
            body, inline = body.split("=", 1)
        key = body.replace("-", "_")
        negated = False
        if key not in schema and key not in aliases and key.startswith("no_"):
            negated, key = True, key[3:]
        key = aliases.get(key, key)
        if key not in schema:
            near = [k for k in schema if k.split(".")[-1] == key.split(".")[-1]]
            hint = f" (did you mean --{near[0]}?)" if near else ""
            raise ConfigError(f"unknown option --{body}{hint}")
        tp, _ = schema[key]
        inner, _ = _strip_optional(tp)
        origin = get_origin(inner)
        i += 1
        if inner is bool:
            if negated:
                value: Any = False
            elif inline is not None:
                value = coerce(key, inline, tp)
            elif i < len(args) and args[i].lower() in _BOOL_WORDS:
                value = coerce(key, args[i], tp)
                i += 1
            else:
                value = True
        elif negated:
            raise ConfigError(f"--no-{key} only applies to boolean options; `{key}` expects {type_name(tp)}")
        elif origin in (list, Sequence, typing.List, tuple):
            values = [] if inline is None else [inline]
            while i < len(args) and not args[i].startswith("--"):
                values.append(args[i])
                i += 1
            value = coerce(key, values, tp)
        elif origin in (dict, Mapping, typing.Dict) or is_dataclass(inner):
            raw = inline if inline is not None else (args[i] if i < len(args) else None)
            if inline is None:
                i += 1
            if raw is None:
                raise ConfigError(f"option --{key} needs a value")
            value = coerce(key, yaml.safe_load(raw), tp)
        else:
            if inline is not None:
                raw = inline
            elif i < len(args) and (not args[i].startswith("--") or _looks_numeric(args[i])):
                raw = args[i]
                i += 1
            else:
                raise ConfigError(f"option --{key} needs a value ({type_name(tp)})")
            value = coerce(key, raw, tp)
        _set_dotted(out, key, value)
    return out


def _looks_numeric(token: str) -> bool:
    return re.fullmatch(r"-[\d.]+(e-?\d+)?", token) is not None


# ----------------------------------------------------------------------------------------------
# Files, interpolation and merging

_INTERPOLATION = re.compile(r"\$\{\s*([\w.]+)\s*:\s*([^}]*)\}")


def _resolve_string(value: str) -> Any:
    def one(match: re.Match) -> Any:
        kind, arg = match.group(1), match.group(2).strip()
        if kind == "oc.env":
            name, _, default = arg.partition(",")
            env = os.environ.get(name.strip())
            if env is None:
                if default:
                    return default.strip()
                raise ConfigError(f"environment variable {name.strip()} used in the config is not set")
            return env
        if kind == "d.processes":
            return max(1, (os.cpu_count() or 1) - int(arg or 0))
        if kind == "d.glob":
            from dolma_tools.io.paths import expand_globs
            return expand_globs([arg])
        if kind == "d.cache":
            return arg
        raise ConfigError(f"unknown interpolation ${{{kind}:...}} in the config")

    whole = _INTERPOLATION.fullmatch(value.strip())
    if whole:
        return one(whole)
    return _INTERPOLATION.sub(lambda m: str(one(m)), value)


def resolve_interpolations(data: Any) -> Any:
    """Apply Dolma's resolvers: ${oc.env:VAR}, ${d.processes:n}, ${d.glob:PATTERN}, ${d.cache:URL}."""
    if isinstance(data, dict):
        return {k: resolve_interpolations(v) for k, v in data.items()}
    if isinstance(data, list):
        out: list[Any] = []
        for item in data:
            resolved = resolve_interpolations(item)
            # a ${d.glob:...} inside a list splices its matches in
            if isinstance(item, str) and isinstance(resolved, list):
                out.extend(resolved)
            else:
                out.append(resolved)
        return out
    if isinstance(data, str) and "${" in data:
        return _resolve_string(data)
    return data


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML or JSON config (local or any smart_open URL) as a mapping."""
    from dolma_tools.io.files import open_text

    try:
        with open_text(path) as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML/JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def build_config(cls: type[T], config_path: str | None, args: Sequence[str]) -> T:
    """defaults < file < flags, with interpolation and validation; the one entry point for stages."""
    data: dict[str, Any] = load_config_file(config_path) if config_path else {}
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    data = deep_merge(data, parse_overrides(cls, args))
    data = resolve_interpolations(data)
    cfg = from_dict(cls, data)
    check_required(cfg)
    if isinstance(cfg, RuntimeConfig):
        cfg.local_pool()  # contradictory executor settings fail now, not when there is work to do
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def describe_options(cls: type) -> list[tuple[str, str, str]]:
    """(flag, type, help) for every option, for `--help`."""
    rows = []
    shared = {f.name for f in fields(RuntimeConfig)} if issubclass(cls, RuntimeConfig) else set()
    schema = flat_schema(cls)
    # the stage's own options first, then the runtime options every stage shares
    ordered = sorted(schema.items(), key=lambda item: item[0].split(".")[0] in shared)
    for key, (tp, f) in ordered:
        default = ""
        if f.default is not MISSING and f.default is not None and not f.metadata.get("required"):
            default = f" [default: {f.default}]"
        required = " (required)" if f.metadata.get("required") else ""
        rows.append((f"--{key}", type_name(tp), f"{f.metadata.get('help', '')}{required}{default}"))
    return rows

