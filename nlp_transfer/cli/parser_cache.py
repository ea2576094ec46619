"""Answer `--help` and argument errors of `train` and `adapt` without importing torch and transformers.

Their parsers are built from `TrainingArguments` (a dataclass of transformers whose module imports torch): about
5 s before a single option is read. The first time a command runs (per version of the package's sources,
transformers and Python) its parser is built for real and described in a small JSON file in the user's cache;
from then on that description rebuilds an equivalent plain argparse parser in milliseconds. It prints the
cached help text as the real parser wrote it and refuses what the real parser refuses (unknown options, a value
of the wrong type or outside its choices). Arguments it accepts still go through the real parser, so the cache
can make an answer faster but never decides what a run does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

CACHE_ENV = "NLP_TRANSFER_CACHE"
"""Folder of the cached parser descriptions (default: $XDG_CACHE_HOME/nlp-transfer or ~/.cache/nlp-transfer)."""
FORMAT = 1

# argparse action classes by the name they are saved under, and the value types a description can hold.
ACTIONS = {
    argparse._StoreAction: "store",
    argparse._StoreTrueAction: "store_true",
    argparse._StoreFalseAction: "store_false",
    argparse._StoreConstAction: "store_const",
    argparse._AppendAction: "append",
    argparse._ExtendAction: "extend",
}
TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


def check_arguments(command: str, argv: list[str], build: Callable[[], argparse.ArgumentParser]) -> None:
    """Print the help and exit 0, or print an argument error and exit 2, as `build()`'s parser would; return
    when the arguments parse, leaving the real parse to the caller."""
    description = _load(command)
    if description is None:
        parser = build()  # the slow import happens here, once per version of the sources and libraries
        try:
            description = describe(parser)
        except TypeError:  # an argument kind this module does not know: the real parser answers, slowly
            parser.parse_args(argv)
            return
        _save(command, description)
    rebuild(description).parse_args(argv)


def describe(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """What the fast parser needs: the help and usage texts as written, and every option's parsing rules."""
    options = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        kind = ACTIONS.get(type(action))
        if kind is None or not action.option_strings:
            raise TypeError(f"cannot describe the argument {action.dest} ({type(action).__name__})")
        options.append(
            {
                "flags": list(action.option_strings),
                "dest": action.dest,
                "action": kind,
                "nargs": action.nargs,
                "type": _type_name(action),
                "choices": [str(choice) for choice in action.choices] if action.choices is not None else None,
                "required": action.required,
            }
        )
    return {
        "format": FORMAT,
        "prog": parser.prog,
        "usage": parser.format_usage(),
        "help": parser.format_help(),
        "options": options,
    }


def rebuild(description: dict[str, Any]) -> argparse.ArgumentParser:
    """A plain argparse parser that accepts and refuses what the described one does."""
    parser = _CachedParser(description, prog=description["prog"], add_help=False, allow_abbrev=True)
    parser.add_argument("-h", "--help", action=_PrintHelp, help_text=description["help"])
    for option in description["options"]:
        kwargs: dict[str, Any] = {"dest": option["dest"], "required": option["required"], "default": None}
        if option["action"] in ("store", "append", "extend"):
            kwargs["nargs"] = option["nargs"]
            kwargs["type"] = TYPES.get(option["type"], str) if option["type"] != "bool" else _boolean
            kwargs["choices"] = option["choices"]
            if option["nargs"] == "?":
                kwargs["const"] = True  # a switch written alone (--bf16): its value is not checked here
        elif option["action"] == "store_const":
            kwargs["const"] = True
        parser.add_argument(*option["flags"], action=option["action"], **kwargs)
    return parser


class _CachedParser(argparse.ArgumentParser):
    """Prints the usage line exactly as the real parser does in an error."""

    def __init__(self, description: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._usage_text = description["usage"]

    def format_usage(self) -> str:
        return self._usage_text

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self._usage_text}{self.prog}: error: {message}\n")


class _PrintHelp(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, help_text: str = "", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.help_text = help_text

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(self.help_text)
        parser.exit()


def _type_name(action: argparse.Action) -> str | None:
    """int, float or str by name; HfArgumentParser's string_to_bool as bool; anything else (a choice mapper)
    as str, since its choices are checked as text."""
    kind = action.type
    if kind in (int, float, str):
        return kind.__name__
    if getattr(kind, "__name__", "") == "string_to_bool":
        return "bool"
    return None if kind is None else "str"


def _boolean(text: str) -> bool:
    """HfArgumentParser's string_to_bool: the same words, the same refusal."""
    lowered = text.lower()
    if lowered in ("yes", "true", "t", "y", "1"):
        return True
    if lowered in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(
        f"Truthy value expected: got {text} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive)."
    )


# ------------------------------------------------------------------------------------------------ the cache


def cache_folder() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"  # Path.home may raise RuntimeError
    return Path(base) / "nlp-transfer"


def _key(command: str) -> str:
    """Changes whenever the parser could: the package's sources (size and time of each module), transformers'
    version, Python's version."""
    package = Path(__file__).resolve().parent
    stamps = sorted(
        f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}"
        for path in package.rglob("*.py")
        for stat in [path.stat()]
    )
    try:
        transformers = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        transformers = "none"
    text = json.dumps([FORMAT, command, transformers, sys.version, stamps])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _path(command: str) -> Path:
    """The description's file; raises OSError where there is no cache folder (no home directory)."""
    try:
        folder = cache_folder()
    except RuntimeError as error:
        raise OSError(str(error)) from None
    return folder / f"parser-{command}-{_key(command)}.json"


def _load(command: str) -> dict[str, Any] | None:
    try:
        description = json.loads(_path(command).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return description if isinstance(description, dict) and description.get("format") == FORMAT else None


def _save(command: str, description: dict[str, Any]) -> None:
    """Write the description through a temporary name; a cache that cannot be written is simply not used."""
    try:
        path = _path(command)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(description), encoding="utf-8")
        partial.replace(path)
    except OSError:
        pass
