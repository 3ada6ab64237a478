"""Figures as a library: each figure function returns a matplotlib ``Figure``, draws into a given ``ax``/``fig``
where its docstring promises, lays the attention maps out without overlaps, and no library module touches pyplot
or the backend (the caller's, e.g. a notebook's inline backend, stays in force)."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402 - only with matplotlib
from matplotlib.figure import Figure  # noqa: E402

import unroll.figures.gallery as figures  # noqa: E402
from unroll.cli import main  # noqa: E402
from unroll.figures.comparison import save_atomic, sweeps_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: what library code must not do: choose a backend, or go through pyplot (whose figures a notebook shows twice
#: and which keeps every figure alive until closed)
BACKEND_SWITCH = re.compile(r"matplotlib\.use\(|switch_backend\(|matplotlib\.pyplot|from matplotlib import pyplot")


def _library_files() -> list[Path]:
    return sorted([*(ROOT / "unroll").rglob("*.py"), *(ROOT / "theory").rglob("*.py")])


def test_no_library_module_switches_the_backend_or_uses_pyplot():
    offenders = [str(p.relative_to(ROOT)) for p in _library_files()
                 if BACKEND_SWITCH.search(re.sub(r"``[^`]*``", "", p.read_text(encoding="utf-8")))]
    assert not offenders, f"library modules that switch the matplotlib backend or use pyplot: {offenders}"
    for bad in ('matplotlib.use("Agg")', "import matplotlib.pyplot as plt", "plt.switch_backend('x')"):
        assert BACKEND_SWITCH.search(bad), bad


def test_drawing_leaves_pyplot_unimported_and_the_backend_alone():
    """In a fresh interpreter: draw and save a figure; pyplot is never imported and the backend never set."""
    code = ("import sys, matplotlib, tempfile, os\n"
            "before = matplotlib.rcParams._get_backend_or_none()\n"
            "import unroll.figures.gallery as f\n"
            "from unroll.figures.comparison import save_atomic\n"
            "figure = f.gamma_truncation_figure(frames=6, bands=2)\n"
            "save_atomic(figure, os.path.join(tempfile.mkdtemp(), 'g.png'))\n"
            "print(type(figure).__name__, 'matplotlib.pyplot' in sys.modules,\n"
            "      matplotlib.rcParams._get_backend_or_none() == before)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MPLBACKEND": ""})
    assert result.stdout.split() == ["Figure", "False", "True"], result.stdout + result.stderr


def _drawn_axes(figure: Figure) -> list:
    return [ax for ax in figure.get_axes() if ax.get_label() != "<colorbar>"]


@pytest.mark.parametrize(("function", "kwargs"), [
    (figures.error_vs_blocks_figure, dict(blocks=(1, 2, 4), frames=4, bands=2)),
    (figures.schedules_figure, dict(blocks=(1, 5))),
    (figures.error_vs_bands_figure, dict(frames=5)),
])
def test_one_panel_figures_return_a_figure_and_draw_into_a_given_ax(function, kwargs):
    alone = function(**kwargs)
    assert isinstance(alone, Figure) and len(_drawn_axes(alone)) == 1 and _drawn_axes(alone)[0].lines
    host = Figure()
    left, right = host.subplots(1, 2)
    assert function(ax=right, **kwargs) is host
    assert right.lines and not left.lines  # drawn where asked, nowhere else


@pytest.mark.parametrize(("function", "kwargs", "panels"), [
    (figures.tents_figure, dict(frames=6, bands=2), 2),
    (figures.gamma_truncation_figure, dict(frames=6, bands=2), 3),
])
def test_multi_panel_figures_return_a_figure_and_draw_into_a_given_fig(function, kwargs, panels):
    alone = function(**kwargs)
    assert isinstance(alone, Figure) and len(_drawn_axes(alone)) == panels
    host = Figure()
    sub = host.subfigures(1, 2)[1]
    assert function(fig=sub, **kwargs) is sub
    assert len(_drawn_axes(host)) == panels and all(ax.figure is sub for ax in _drawn_axes(host))


@pytest.fixture(scope="module")
def attention_data():
    """attention_maps_data at toy size (a few training steps): the layout, not the learning, is under test."""
    return figures.attention_maps_data(figures.FigureSettings(train_steps=3, train_size=32, seed=0))


def _text_boxes(figure: Figure, renderer) -> list[tuple[str, object]]:
    """``(owner, bbox)`` of every visible piece of the figure: each axes' drawing area, its title and axis
    labels, each colour bar and its label, and the (sub)figure titles."""
    boxes = []
    for index, ax in enumerate(figure.get_axes()):
        owner = f"axes {index}"
        boxes.append((owner, ax.get_window_extent(renderer)))
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            if text.get_text():
                boxes.append((owner, text.get_window_extent(renderer)))
    for sub in [figure, *figure.subfigs]:
        if sub._suptitle is not None:
            boxes.append((f"suptitle {id(sub)}", sub._suptitle.get_window_extent(renderer)))
    return boxes


def _overlaps(figure: Figure) -> list[tuple[str, str]]:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = _text_boxes(figure, renderer)
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
            if a != b and box_a.overlaps(box_b)]


def test_attention_maps_figure_panels_labels_titles_and_no_overlap(attention_data):
    figure = figures.attention_maps_figure(data=attention_data)
    assert isinstance(figure, Figure)
    maps = _drawn_axes(figure)
    assert len(maps) == 8 and all(ax.images for ax in maps)  # 2 x 4, no empty panel
    assert all(ax.get_xlabel() == "key frame j" and ax.get_ylabel() == "query frame i" for ax in maps)
    for kind, entry in attention_data["models"].items():
        learned = f"distance to |gamma| {entry['alignment']:.3f} vs control {entry['control_alignment']:.3f}"
        gap = f"control - learned = {entry['control_alignment'] - entry['alignment']:+.3f}"
        assert any(learned in ax.get_title() and gap in ax.get_title() for ax in maps), (kind, learned)
        assert any("control (white data)" in ax.get_title()
                   and f"{entry['control_alignment']:.3f}" in ax.get_title() for ax in maps)
    assert not _overlaps(figure), _overlaps(figure)


def test_the_overlap_check_can_fail():
    figure = Figure(figsize=(3, 2))  # no layout engine: a long ylabel of the right panel runs into the left one
    left, right = figure.subplots(1, 2)
    left.set_title("a title long enough to run into the next panel's title")
    right.set_title("another long title that the left one runs into")
    assert _overlaps(figure)


def test_attention_maps_figure_draws_into_a_given_fig(attention_data):
    host = Figure(layout="constrained")
    assert figures.attention_maps_figure(data=attention_data, fig=host) is host and len(_drawn_axes(host)) == 8


def test_sweeps_figure_one_panel_per_sweep(tmp_path):
    rows = [{"score_error": 0.2, "constructed_score_error": 0.1}, {"score_error": 0.1, "constructed_score_error": 0.05}]
    sweeps = {"H": {"frames": [8, 16], "results": rows, "model": "dit"},
              "decay": {"kernel": "matern", "model": "dit",
                        "results": [{**r, "nu": 0.5 + i, "ell": 2.0} for i, r in enumerate(rows)]}}
    figure = sweeps_figure(sweeps)
    assert isinstance(figure, Figure) and len(figure.get_axes()) == 2
    assert Path(save_atomic(figure, tmp_path / "sweeps.png")).stat().st_size > 0
    with pytest.raises(ValueError, match="sweeps"):
        sweeps_figure({})


def test_generate_figures_writes_with_a_progress_bar(tmp_path, capsys):
    lines: list[str] = []
    written = figures.generate_figures(tmp_path / "out", ["gamma_truncation"], log=lines.append, progress=True)
    assert Path(written["gamma_truncation"]).stat().st_size > 0 and len(lines) == 1
    assert "figures" in capsys.readouterr().err  # the bar, on stderr
    with pytest.raises(ValueError, match="figure names"):
        figures.generate_figures(tmp_path, ["no-such-figure"])


def test_cli_requires_out(tmp_path, capsys):
    assert main(["figures", "--only", "gamma_truncation"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["figures", "--only", "gamma_truncation", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "gamma_truncation.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp"))


def test_theory_sweep_figure_without_pyplot(tmp_path):
    from theory.sweep import write_figure

    rows = [{key: value for p in ("gd", "trunc", "net", "total")
             for key, value in ((f"{p}_measured", 1e-3 * (i + 1)), (f"{p}_bound", 2e-3 * (i + 1)))}
            for i in range(3)]
    assert write_figure(rows, str(tmp_path / "grid.png")) and (tmp_path / "grid.png").stat().st_size > 0
