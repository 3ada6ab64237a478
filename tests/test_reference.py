"""The reference pages of the documentation site cover everything public.

The site renders them at build time (``make docs``: ``mkdocs build --strict``), so they cannot go stale in their
content: ``docs/reference.md`` holds one mkdocstrings directive ``::: module`` per public module, rendered from the
docstrings (signatures, ``Args``/``Returns``/``Raises``), and ``docs/cli.md`` a marker that ``mkdocs_hooks.py``
replaces with the ``--help`` of every sub-command of ``unroll.cli.build_parser()``.  What can go stale is the list:
these tests fail when a public module has no directive, a directive names a module that is gone, a public name
has no docstring of its own, or the command-line page would lose a sub-command or an option.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
CLI_PAGE = ROOT / "docs" / "cli.md"
PACKAGES = ("unroll", "theory")
DIRECTIVE = re.compile(r"^::: (?P<name>[\w.]+)\s*$", re.MULTILINE)


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


def directives(text: str) -> list[str]:
    """The modules a reference page renders (``::: name`` lines)."""
    return [m["name"] for m in DIRECTIVE.finditer(text)]


def missing_modules(text: str) -> list[str]:
    found = set(directives(text))
    return [m.__name__ for m in public_modules() if m.__name__ not in found]


def undocumented_names() -> list[str]:
    """Public functions and classes whose docstring is empty or only the one dataclass writes (``Name(...)``)."""
    missing = []
    for module in public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = obj.__doc__ or ""
            if not doc.strip() or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
                missing.append(f"{module.__name__}.{name}")
    return missing


def test_every_public_module_is_rendered():
    text = REFERENCE.read_text(encoding="utf-8")
    assert not missing_modules(text), f"docs/reference.md lacks `::: module` lines for {missing_modules(text)}"


def test_no_directive_names_a_module_that_is_gone():
    known = {m.__name__ for m in public_modules()}
    stale = [name for name in directives(REFERENCE.read_text(encoding="utf-8")) if name not in known]
    assert not stale, f"docs/reference.md renders modules that are not public (or gone): {stale}"


def test_every_public_name_has_a_docstring():
    assert not undocumented_names(), f"public names without a docstring: {undocumented_names()}"


def test_the_top_level_names_are_listed():
    """``::: unroll`` renders only the package docstring (its names are lazy); the page lists them by hand."""
    import unroll

    text = REFERENCE.read_text(encoding="utf-8")
    assert [name for name in unroll.__all__ if f"`{name}`" not in text] == []


def test_the_checks_can_fail():
    text = REFERENCE.read_text(encoding="utf-8")
    assert "unroll.construction.gd" in missing_modules(text.replace("::: unroll.construction.gd\n", ""))
    assert "unroll.construction.gd" not in missing_modules(text)
    assert directives("::: unroll.nowhere\n    options:\n      members: false\n") == ["unroll.nowhere"]


@pytest.mark.parametrize("name", ["unroll", "theory"])
def test_top_level_exports_resolve(name):
    module = importlib.import_module(name)
    for export in module.__all__:
        assert getattr(module, export) is not None


# ------------------------------------------------------------------ the command-line page
def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings if option.startswith("--")]


def test_cli_page_holds_the_marker():
    assert _hooks().MARKER in CLI_PAGE.read_text(encoding="utf-8")


def test_cli_reference_has_every_subcommand_and_option():
    from unroll.cli import build_parser

    hooks = _hooks()
    parser = build_parser()
    text = hooks.render_cli_reference(parser)
    commands = hooks.subcommands(parser)
    assert len(commands) >= 6, list(commands)  # demo, verify, train, compare, bounds, figures at least
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    by_heading = {s.split("\n", 1)[0].strip("`"): s for s in sections if s}
    for name, command in commands.items():
        section = by_heading.get(f"unroll {name}")
        assert section is not None, f"no section for unroll {name}"
        missing = [option for option in long_options(command) if option not in section]
        assert not missing, f"unroll {name}: options missing from its section: {missing}"


def test_cli_page_replaces_only_its_marker():
    hooks = _hooks()

    class Page:
        class file:  # noqa: N801 - stands in for mkdocs' File
            src_uri = "cli.md"

    rendered = hooks.on_page_markdown(CLI_PAGE.read_text(encoding="utf-8"), Page, None, None)
    assert hooks.MARKER not in rendered and "## `unroll verify`" in rendered
    with pytest.raises(ValueError, match="cli-reference"):
        hooks.on_page_markdown("# no marker\n", Page, None, None)
    Page.file.src_uri = "index.md"
    assert hooks.on_page_markdown("# untouched\n", Page, None, None) == "# untouched\n"
