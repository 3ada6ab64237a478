"""docs/reference.md documents every public name: each module's ``__all__`` (``unroll``, its sub-modules,
``unroll.training.*``, ``theory`` and ``theory.*``) and every CLI sub-command with each of its options.

The page is generated from the docstrings and the argparse parsers by ``render_reference`` (run
``python tests/test_reference.py --write`` after adding a public name); the tests below only check that
nothing public is missing from it, so a new export without a reference entry fails the suite.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"
PACKAGES = ("unroll", "theory")
SECTION = re.compile(r"^#{2,4} `(?P<name>[^`]+)`", re.MULTILINE)


def public_modules() -> list[ModuleType]:
    """``unroll``, ``theory`` and every non-private sub-module (except the CLI's, documented as commands)
    that declares ``__all__``."""
    modules = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names = [package_name] + [info.name for info in pkgutil.walk_packages(package.__path__, package_name + ".")]
        for name in names:
            if any(part.startswith("_") for part in name.split(".")) or name.startswith("unroll.cli"):
                continue
            module = importlib.import_module(name)
            if hasattr(module, "__all__"):
                modules.append(module)
    return modules


def cli_commands() -> dict[str, argparse.ArgumentParser]:
    from unroll.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings
            if option.startswith("--") and option != "--help"]


def sections(text: str) -> dict[str, str]:
    """``{heading name: section text}`` for headings ``## `name` `` (levels 2-4)."""
    matches = list(SECTION.finditer(text))
    return {m["name"]: text[m.end(): matches[i + 1].start() if i + 1 < len(matches) else len(text)]
            for i, m in enumerate(matches)}


def mentions(section: str, name: str) -> bool:
    """``name`` appears in backticks, bare or qualified, possibly followed by a call signature."""
    return re.search(r"`(?:[\w.]+\.)?" + re.escape(name) + r"(?:`|\(|\[)", section) is not None


def missing_entries(text: str) -> list[str]:
    """Everything public that ``text`` (a reference page) does not document, as readable strings."""
    found = sections(text)
    missing = []
    for module in public_modules():
        section = found.get(module.__name__)
        if section is None:
            missing.append(f"section `{module.__name__}`")
            continue
        missing += [f"{module.__name__}.{name}" for name in module.__all__ if not mentions(section, name)]
    for command, parser in cli_commands().items():
        section = found.get(f"unroll {command}")
        if section is None:
            missing.append(f"section `unroll {command}`")
            continue
        missing += [f"unroll {command} {option}" for option in long_options(parser)
                    if f"`{option}" not in section]
    return missing


def test_every_public_name_and_cli_option_is_documented():
    missing = missing_entries(REFERENCE.read_text(encoding="utf-8"))
    assert not missing, ("docs/reference.md lacks: " + ", ".join(missing)
                         + "  (regenerate with `python tests/test_reference.py --write`)")


def test_documented_sections_still_exist():
    """A section for a module or command that no longer exists is stale."""
    known = {m.__name__ for m in public_modules()} | {f"unroll {c}" for c in cli_commands()}
    stale = sorted(set(sections(REFERENCE.read_text(encoding="utf-8"))) - known)
    assert not stale, f"docs/reference.md documents what no longer exists: {stale}"


def test_the_check_can_fail():
    text = REFERENCE.read_text(encoding="utf-8")
    assert not missing_entries(text)
    without_name = re.sub(r"^- `construct_unrolled\(.*$", "", text, flags=re.MULTILINE)
    assert "unroll.constructor.construct_unrolled" in missing_entries(without_name) or \
        "unroll.construct_unrolled" in missing_entries(without_name)
    without_option = text.replace("`--bands", "`--b4nds")
    assert "unroll verify --bands" in missing_entries(without_option)
    without_section = text.replace("### `unroll.gd`", "### unroll.gd")
    assert "section `unroll.gd`" in missing_entries(without_section)


@pytest.mark.parametrize("name", ["unroll", "theory"])
def test_top_level_exports_resolve(name):
    module = importlib.import_module(name)
    for export in module.__all__:
        assert getattr(module, export) is not None


# ------------------------------------------------------------------ the generator
PREAMBLE = """# Reference: command line and public API

Generated from the docstrings and the command-line parsers by `python tests/test_reference.py --write`;
`tests/test_reference.py` fails when a public name (a module's `__all__`) or a CLI option is missing here.
Shapes follow the docs: a sample is `(H, d)`, batches `(batch, H, d)`; diffusion times are `t > 0`.
Walkthroughs: [index](index.md).

## Command line

`unroll COMMAND [options]`; every command prints `--help`. Every expected failure is one line on stderr,
`unroll COMMAND: error: ...`, naming the option, with the exit status of its class (`unroll --help` lists them):
"""


def _first_paragraph(text: str | None) -> str:
    text = inspect.cleandoc(text or "").split("\n\n")[0]
    text = " ".join(line.strip() for line in text.splitlines())
    return re.sub(r":(?:class|func|data|mod|meth|attr):`", "`", text).replace("``", "`")


def _signature(obj: object) -> str:
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return ""
    try:
        signature = str(inspect.signature(obj)).replace("'", "")
    except (TypeError, ValueError):
        return ""
    signature = re.sub(r" -> .*$", "", signature)
    return signature if len(signature) <= 110 else "(...)"


def _exit_codes() -> str:
    from unroll.cli.failures import EXIT_CODES

    return "\n".join(f"- `{code}` — {meaning}" for code, meaning in EXIT_CODES) + "\n"


def render_reference() -> str:
    lines = [PREAMBLE, _exit_codes()]
    for command, parser in cli_commands().items():
        lines.append(f"### `unroll {command}`\n")
        lines.append(_first_paragraph(parser.description) + "\n")
        for action in parser._actions:
            options = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
            if not options:
                continue
            default = "" if action.default in (None, argparse.SUPPRESS) else f" (default `{action.default}`)"
            metavar = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
            help_text = (action.help or "").replace("%(default)s", str(action.default))
            if "(default" in help_text:
                default = ""
            if action.choices is not None and action.nargs != "+":
                help_text = f"one of {', '.join(map(str, action.choices))}" + (f"; {help_text}" if help_text else "")
            lines.append(f"- `{', '.join(options)}{metavar}` — {help_text}{default}")
        lines.append("")
    lines.append("## Python API\n")
    lines.append("Top-level names of `unroll` are imported lazily (`import unroll` stays cheap).\n")
    for module in public_modules():
        lines.append(f"### `{module.__name__}`\n")
        lines.append(_first_paragraph(module.__doc__) + "\n")
        for name in module.__all__:
            obj = getattr(module, name)
            doc = obj.__doc__ if (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj)) else None
            if inspect.isclass(obj) and obj.__doc__ == type.__doc__:
                doc = None
            summary = _first_paragraph(doc)
            if not summary and not callable(obj):
                summary = f"constant: `{type(obj).__name__}`"
            lines.append(f"- `{name}{_signature(obj)}` — {summary}".rstrip(" —"))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_reference.py --write   (regenerates docs/reference.md)")
    temporary = REFERENCE.with_suffix(".md.tmp")
    temporary.write_text(render_reference(), encoding="utf-8")
    os.replace(temporary, REFERENCE)
    print(f"wrote {REFERENCE}")
