"""Packaging: the distribution name every install hint prints, the optional hypothesis of ``unroll.testing``,
the licence."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# `pip install 'NAME[extra]'` as printed by error messages, help text and docs (also with a regex-escaped bracket)
INSTALL_HINT = re.compile(r"pip install '([A-Za-z0-9_.-]+)\\?\[([a-z,]+)\\?\]'")


def _text_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for folder in ("unroll", "theory", "benchmarks", "tests"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def test_the_distribution_name_is_not_the_unrelated_unroll_on_the_package_index():
    assert PROJECT["name"] != "unroll"


def test_every_install_hint_names_this_distribution_and_one_of_its_extras():
    hints = [(path.relative_to(ROOT), match.group(1), match.group(2)) for path in _text_files()
             for match in INSTALL_HINT.finditer(path.read_text(encoding="utf-8"))
             if path.name != "test_packaging.py"]
    assert len(hints) >= 5, hints  # the figures, Dask and hypothesis hints at least
    extras = set(PROJECT["optional-dependencies"])
    wrong = [(path, name, extra) for path, name, extra in hints
             if name != PROJECT["name"] or not set(extra.split(",")) <= extras]
    assert not wrong, f"install hints naming another distribution or an undeclared extra: {wrong}"


def test_hypothesis_is_declared_for_unroll_testing():
    testing = PROJECT["optional-dependencies"]["testing"]
    assert any(re.match(r"hypothesis\b", requirement) for requirement in testing)
    assert not any(re.match(r"hypothesis\b", requirement) for requirement in PROJECT["dependencies"])


def test_unroll_testing_without_hypothesis_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # makes `import hypothesis` raise ImportError
    monkeypatch.delitem(sys.modules, "unroll.testing", raising=False)
    with pytest.raises(ImportError, match=re.escape(f"pip install '{PROJECT['name']}[testing]'")):
        importlib.import_module("unroll.testing")


def test_property_run_without_hypothesis_names_the_extra(monkeypatch):
    from theory.sweep import property_run

    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ImportError, match=re.escape(f"pip install '{PROJECT['name']}[testing]'")):
        property_run(max_examples=1)


def test_the_licence_file_is_the_declared_spdx_licence():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the unroll developers" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text
