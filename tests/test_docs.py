"""The docs' walkthroughs run as part of the default test suite: a page whose code breaks fails here.

Runner.  Each ``docs/*.md`` page's fenced ``python`` blocks run in order, exactly once, with the
namespace semantics of pytest-markdown-docs (``pytest --markdown-docs docs/``): a fence whose info string
carries ``continuation`` runs in the namespace left by the previous fence, any other fence starts a fresh
namespace, and ``notest`` fences are skipped.  We do not call that plugin from the default run because
(a) it only collects when ``--markdown-docs`` is on the command line, and turning it on in ``addopts``
also makes it collect every docstring of every ``.py`` file on the test paths; (b) it re-executes all
previous fences for each ``continuation`` fence, so a walkthrough of N fences costs O(N^2) fence runs;
(c) a single test per page keeps the report readable.  The pages stay valid input for the plugin
(``pytest --markdown-docs docs/`` gives the same verdict, more slowly), and a failing fence is reported with
its line number in the ``.md`` file (the code is compiled with the page as its file name and its real
line offsets).

Each page runs as a reader's fresh interpreter would: torch's default dtype float32 (the suite's conftest
sets float64; the pages must say float64 where they need it), working directory a temporary folder,
matplotlib on the Agg backend.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
WALKTHROUGHS = [page for page in PAGES if re.match(r"\d\d_", page.name)]
PYTHON_LANGS = ("py", "python", "python3")
FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass
class Fence:
    """One fenced code block: info-string words, code, and the page lines of its code (1-based, inclusive
    ``start_line``, exclusive ``end_line`` = the closing fence's line)."""

    lang: str
    options: frozenset[str]
    code: str
    start_line: int
    end_line: int


def extract_fences(text: str) -> list[Fence]:
    """All fenced code blocks of a markdown text (CommonMark fences: ``` or ~~~, up to 3 spaces indent)."""
    fences: list[Fence] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE_OPEN.match(lines[index])
        if not match or (match["fence"][0] == "`" and "`" in match["info"]):
            index += 1
            continue
        marker, indent = match["fence"], len(match["indent"])
        words = match["info"].split()
        body: list[str] = []
        index += 1
        start = index + 1  # 1-based line number of the first code line
        closing = re.compile(r"^ {0,3}" + re.escape(marker[0]) + "{" + str(len(marker)) + r",}\s*$")
        while index < len(lines) and not closing.match(lines[index]):
            line = lines[index]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            index += 1
        fences.append(Fence(lang=words[0] if words else "", options=frozenset(words[1:]),
                            code="\n".join(body) + "\n" if body else "", start_line=start, end_line=index + 1))
        index += 1  # skip the closing fence (or run off the end: an unclosed fence ends the page)
    return fences


def python_fences(text: str) -> list[Fence]:
    return [f for f in extract_fences(text) if f.lang in PYTHON_LANGS and "notest" not in f.options]


def is_output(fence: Fence) -> bool:
    """A ```` ```text output ```` fence shows the printed output of the python fence before it."""
    return fence.lang == "text" and "output" in fence.options


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")
#: printed numbers may move in their last digits across BLAS builds and platforms; rounding-level numbers
#: (|v| < TINY, e.g. a 1e-15 agreement) may differ entirely.  The words between the numbers must match exactly.
RELATIVE_TOLERANCE = 0.02
TINY = 1e-8
#: a ```` ```text output rounding ```` fence shows float32 rounding errors, which are defined only up to their
#: order of magnitude (the summation order, hence the thread count and BLAS build, moves them by tens of
#: percent): its numbers may differ by up to this factor.
ROUNDING_FACTOR = 3.0


def outputs_match(expected: str, actual: str, rounding: bool = False) -> bool:
    """Same text, numbers equal up to ``RELATIVE_TOLERANCE`` (or both below ``TINY`` in magnitude); with
    ``rounding``, positive numbers within a factor ``ROUNDING_FACTOR`` of each other also match."""
    def split(text: str) -> tuple[list[str], list[float]]:
        text = "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
        return NUMBER.split(text), [float(v) for v in NUMBER.findall(text)]

    words_e, numbers_e = split(expected)
    words_a, numbers_a = split(actual)
    if words_e != words_a or len(numbers_e) != len(numbers_a):
        return False
    for e, a in zip(numbers_e, numbers_a, strict=True):
        if e == a or (math.isnan(e) and math.isnan(a)) or (abs(e) < TINY and abs(a) < TINY):
            continue
        if rounding and e > 0 and a > 0 and max(e, a) <= ROUNDING_FACTOR * min(e, a):
            continue
        if not abs(e - a) <= RELATIVE_TOLERANCE * max(abs(e), abs(a)):
            return False
    return True


class OutputMismatch(AssertionError):
    """A ``text output`` fence no longer shows what its python fence prints."""


def run_page(path: Path, check_outputs: bool = True) -> tuple[dict[str, object], dict[int, str]]:
    """Execute the page's python fences in order.

    Returns the final namespace and, per ``text output`` fence (keyed by its start line), what the python
    fence before it printed.  Exceptions propagate unchanged, their tracebacks pointing at ``path`` and the
    fence's line in it; with ``check_outputs`` a stale output block raises :class:`OutputMismatch`.
    """
    namespace: dict[str, object] = {}
    printed = ""
    captured: dict[int, str] = {}
    for fence in extract_fences(path.read_text(encoding="utf-8")):
        if is_output(fence):
            captured[fence.start_line] = printed
            if check_outputs and not outputs_match(fence.code, printed, rounding="rounding" in fence.options):
                raise OutputMismatch(
                    f"{path.name}:{fence.start_line}: the output block no longer matches what the code above "
                    f"prints (refresh it with `python tests/test_docs.py --update {path}`).\n"
                    f"--- page ---\n{fence.code}--- printed ---\n{printed}")
            continue
        if fence.lang not in PYTHON_LANGS or "notest" in fence.options:
            continue
        if "continuation" not in fence.options:
            namespace = {"__name__": "__main__"}
        source = "\n" * (fence.start_line - 1) + fence.code
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(source, str(path), "exec", dont_inherit=True), namespace)
        printed = buffer.getvalue()
        sys.stdout.write(printed)
    return namespace, captured


def update_outputs(path: Path) -> None:
    """Rewrite every ``text output`` fence of ``path`` with what its python fence prints now (atomic write)."""
    _, captured = run_page(path, check_outputs=False)
    lines = path.read_text(encoding="utf-8").splitlines()
    for fence in sorted((f for f in extract_fences("\n".join(lines)) if is_output(f)),
                        key=lambda f: f.start_line, reverse=True):
        new = captured[fence.start_line].rstrip("\n").splitlines()
        lines[fence.start_line - 1: fence.end_line - 1] = new
    temporary = path.with_suffix(".md.tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, path)


@pytest.fixture
def reader_session(tmp_path, monkeypatch):
    """A fresh reader's interpreter: float32 default dtype, a scratch working directory, Agg backend."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield tmp_path
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_runs(page, reader_session):
    start = time.perf_counter()
    run_page(page)
    elapsed = time.perf_counter() - start
    print(f"{page.name}: {len(python_fences(page.read_text(encoding='utf-8')))} python fences, {elapsed:.1f} s")


def test_walkthroughs_exist_and_have_code():
    assert len(WALKTHROUGHS) >= 5, f"expected five walkthroughs in {DOCS}, found {[p.name for p in WALKTHROUGHS]}"
    for page in WALKTHROUGHS:
        fences = python_fences(page.read_text(encoding="utf-8"))
        assert fences, f"{page.name} has no python fence that runs"
        assert "continuation" not in fences[0].options, f"{page.name}: the first fence cannot be a continuation"


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_local_links_resolve(page):
    """Every relative link or image of a page points at an existing file (figures included)."""
    missing = []
    for match in LINK.finditer(page.read_text(encoding="utf-8")):
        target = match["target"].split("#")[0]
        if not target or "://" in target or target.startswith("mailto:"):
            continue
        if not (page.parent / target).exists():
            missing.append(target)
    assert not missing, f"{page.name} links to missing files: {missing}"


OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md")


def test_nothing_sends_a_reader_outside_the_repository():
    """README, docs and the packages cite docs/design.md for the mathematics, never a file beside the checkout."""
    root = DOCS.parent
    files = [root / "README.md", *DOCS.glob("*.md"), *(root / "unroll").rglob("*.py"), *(root / "theory").rglob("*.py")]
    offenders = [str(f.relative_to(root)) for f in files if OUTSIDE.search(f.read_text(encoding="utf-8"))]
    assert not offenders, f"these files point outside the repository: {offenders}"
    assert OUTSIDE.search("see ../shared/DESIGN.md"), "the pattern must catch a reference outside"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_text_block_is_checked_output(page):
    """A ```` ```text ```` block shows what the code above printed, so it must be a ``text output`` block, which
    :func:`run_page` compares with what the code prints now: no page shows output nothing checks."""
    unchecked = [f.start_line for f in extract_fences(page.read_text(encoding="utf-8"))
                 if f.lang in ("text", "") and not is_output(f)]
    assert not unchecked, f"{page.name}: text blocks not marked `text output` (unchecked) at lines {unchecked}"


RECORD_VERDICTS = DOCS.parent / "runs" / "record_final" / "verdicts.md"


def table_rows(text: str) -> list[str]:
    """The data rows of the markdown verdict tables in ``text`` (rows that start with a claim, ``| (a) ...``)."""
    return [line.rstrip() for line in text.splitlines() if line.startswith("| (")]


def test_page_5_verdicts_are_those_of_the_run_of_record():
    """Page 5 reproduces runs/record_final/verdicts.md, which `unroll compare --out runs/record_final` (named on
    the page) regenerates; where that run is present (not in a fresh clone: runs/ is not committed) they agree."""
    if not RECORD_VERDICTS.is_file():
        pytest.skip(f"{RECORD_VERDICTS} not present (runs/ is not part of the repository)")
    page = table_rows((DOCS / "05_trained_networks.md").read_text(encoding="utf-8"))
    assert page and page == table_rows(RECORD_VERDICTS.read_text(encoding="utf-8"))


def test_unchecked_blocks_and_tables_are_caught():
    plain, checked = extract_fences("```text\n1\n```\n\n```text output\n1\n```\n")
    assert plain.lang == "text" and not is_output(plain) and is_output(checked)  # the first is refused above
    assert table_rows("| claim | x |\n|---|---|\n| (a) one | 1 |\n") == ["| (a) one | 1 |"]


def test_index_links_every_walkthrough():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in WALKTHROUGHS:
        assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"


# ------------------------------------------------------------------ the runner itself can fail
BROKEN_PAGE = """# A page

```python
value = 41
```

Prose between fences.

```python continuation
value += 1
assert value == 43, value
```
"""


def test_runner_fails_on_a_broken_page_and_names_the_line(tmp_path):
    page = tmp_path / "broken.md"
    page.write_text(BROKEN_PAGE, encoding="utf-8")
    with pytest.raises(AssertionError) as info:
        run_page(page)
    frames = [entry for entry in info.traceback if Path(str(entry.path)) == page]
    assert frames and frames[-1].lineno + 1 == 11  # the assert is on line 11 of the page


def test_runner_namespace_semantics(tmp_path):
    page = tmp_path / "ns.md"
    page.write_text("```python\na = 1\n```\n\n```python continuation\nb = a + 1\n```\n\n"
                    "```python notest\nraise RuntimeError('not run')\n```\n\n```py\nc = 3\n```\n", encoding="utf-8")
    namespace, _ = run_page(page)
    assert namespace.get("c") == 3 and "a" not in namespace  # a fence without continuation starts afresh
    page.write_text("```python\na = 1\n```\n\n```python continuation\nb = a + 1\n```\n", encoding="utf-8")
    assert run_page(page)[0]["b"] == 2
    page.write_text("```python\na = 1\n```\n\n```python\nb = a + 1\n```\n", encoding="utf-8")
    with pytest.raises(NameError):
        run_page(page)


def test_fence_parser_ignores_other_languages_and_keeps_indentation():
    text = "~~~bash\nunroll verify\n~~~\n\n````python\nif True:\n    x = 1\n````\n\n```text\nno\n```\n"
    fences = extract_fences(text)
    assert [f.lang for f in fences] == ["bash", "python", "text"]
    code = python_fences(text)
    assert len(code) == 1 and code[0].code == "if True:\n    x = 1\n" and code[0].start_line == 6


def test_output_blocks_are_checked(tmp_path):
    page = tmp_path / "out.md"
    page.write_text("```python\nprint('lambda_min =', 0.25, 'err', 3e-16, float('nan'))\n```\n\n```text output\n"
                    "lambda_min = 0.2502 err 7e-15 nan\n```\n", encoding="utf-8")
    run_page(page)  # within the tolerance; rounding-level numbers may differ
    page.write_text("```python\nprint('lambda_min =', 0.25)\n```\n\n```text output\nlambda_min = 0.3\n```\n",
                    encoding="utf-8")
    with pytest.raises(OutputMismatch):
        run_page(page)
    update_outputs(page)
    assert "lambda_min = 0.25\n" in page.read_text(encoding="utf-8")
    run_page(page)


def test_rounding_output_blocks_match_to_the_order_of_magnitude():
    assert outputs_match("float32 error 2.4e-06 at B 7.5", "float32 error 5.1e-06 at B 7.5", rounding=True)
    assert not outputs_match("float32 error 2.4e-06 at B 7.5", "float32 error 5.1e-06 at B 7.5")
    assert not outputs_match("float32 error 2.4e-06", "float32 error 9.1e-06", rounding=True)
    assert not outputs_match("B 7.5 error 2e-06", "B 9.9 error 2e-06", rounding=False)


if __name__ == "__main__":  # python tests/test_docs.py --update docs/01_gp_data.md [...]
    import argparse

    parser = argparse.ArgumentParser(description="Refresh the `text output` blocks of docs pages.")
    parser.add_argument("--update", nargs="+", type=Path, required=True, metavar="PAGE")
    import tempfile

    os.environ.setdefault("MPLBACKEND", "Agg")
    pages = [page_path.resolve() for page_path in parser.parse_args().update]
    os.chdir(tempfile.mkdtemp(prefix="unroll-docs-"))  # pages may write files: keep them out of the checkout
    for page_path in pages:
        update_outputs(page_path)
        print(f"updated {page_path}")
