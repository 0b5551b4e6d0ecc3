"""Sphinx configuration of the clvbayes documentation.

Build (from the repository root, warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The notebooks in ``../notebooks`` and the benchmark write-ups in ``../benchmarks`` live
outside ``docs/``; Sphinx only reads files under its source directory, so they are copied
into ``docs/notebooks/`` and ``docs/benchmarks/`` (generated, git-ignored) when this file is
loaded, i.e. at the start of every build; the ``--help`` texts of the ``clvbayes`` command
are written to ``docs/_generated/cli/`` from :func:`clvbayes.cli.build_parser` at the same
time. The notebooks are executed during the build with ``CLVBAYES_FAST=1`` (short chains),
so an error in a notebook fails the build.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# The notebooks read this to run short chains; set before myst-nb starts any kernel (the
# kernels inherit this process's environment).
os.environ.setdefault("CLVBAYES_FAST", "1")
# Headless plotting in the kernels and in anything autodoc imports.
os.environ.setdefault("MPLBACKEND", "Agg")

import clvbayes  # noqa: E402

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent


def _sync(sources: list[Path], target: Path, texts: dict[Path, str] | None = None) -> None:
    """Mirror ``sources`` into ``target``: copy new or changed files (keeping their mtime, so
    unchanged files are not rebuilt) and delete files whose source is gone. ``texts`` gives
    the content to write instead of a copy for some sources."""
    target.mkdir(exist_ok=True)
    texts = texts or {}
    names = {p.name for p in sources}
    for old in target.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    for src in sources:
        dst = target / src.name
        if src in texts:
            _write_if_changed(dst, texts[src])
        elif not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copy2(src, dst)


def _benchmark_pages() -> tuple[list[Path], dict[Path, str]]:
    """The benchmark write-ups; results whose first heading another one shares (re-runs and
    smoke runs of the same script) get their file name added to it, so the navigation can
    tell them apart."""
    bench = ROOT / "benchmarks"
    results = sorted((bench / "results").glob("*.md"))
    titles = {}
    for path in results:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        titles[path] = first[2:].strip() if first.startswith("# ") else None
    texts = {}
    for path, title in titles.items():
        if title is not None and list(titles.values()).count(title) > 1:
            head, _, rest = path.read_text(encoding="utf-8").partition("\n")
            texts[path] = f"{head} ({path.stem})\n{rest}"
    return [bench / "README.md", *results], texts


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _cli_help(target: Path) -> None:
    """``--help`` of ``clvbayes`` and of each subcommand, from the parser itself, into
    ``target/<command>.txt`` (included by ``getting_started/cli.md``), so the command-line
    page always matches :mod:`clvbayes.cli`."""
    import argparse

    from clvbayes.cli import build_parser

    target.mkdir(parents=True, exist_ok=True)
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal width; fix it
    try:
        parser = build_parser()
        _write_if_changed(target / "clvbayes.txt", parser.format_help())
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    _write_if_changed(target / f"{name}.txt", sub.format_help())
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


_sync(sorted((ROOT / "notebooks").glob("*.ipynb")), DOCS / "notebooks")
_bench_sources, _bench_texts = _benchmark_pages()
_sync(_bench_sources, DOCS / "benchmarks", texts=_bench_texts)
_cli_help(DOCS / "_generated" / "cli")

# -- project ------------------------------------------------------------------------------
project = "clvbayes"
author = "The clvbayes developers"
copyright = "2026, The clvbayes developers"
release = clvbayes.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ---------------------------------------------------------------------------
# No sphinx.ext.intersphinx: the CI machine has no network (only package registries), and
# remote inventories would make the build depend on it.
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "README.md",
    "examples",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    "jupyter_execute",
    "_generated",
    "_templates",
]
templates_path = ["_templates"]

# -- MyST / myst-nb -----------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# "$" next to a digit is a currency sign, not math: "actual $70,976; MLE $59,794" in the
# validation guide stays text (Pandoc's rule).
myst_dmath_allow_digits = False
# "force": every build runs every notebook, so a broken notebook fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 900  # seconds per cell
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# -- autodoc / autosummary / numpydoc -----------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
# numpydoc renders the Attributes/Methods sections itself; without this autosummary would
# list every member a second time (and warn about members it cannot import).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"clvbayes {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["css/clvbayes.css"]
