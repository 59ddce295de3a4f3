"""`modelctl dashboard`: one static site where everyone sees every model (issue 23).

``collect`` reads the repository and the state store into plain data (``model``; drift records through ``drift``,
whose docstring gives the record shape it reads), ``charts`` turns a model's numbers into Plotly figures, ``render``
writes the pages, the vendored Plotly bundle and the templates' CSS/JS; ``build`` is the three in a row.
"""

from __future__ import annotations

from pathlib import Path

from modelctl.dashboard.collect import collect
from modelctl.dashboard.render import Built, render
from modelctl.repo import Repo
from modelctl.state import State

__all__ = ["Built", "build"]


def build(repo: Repo, out: Path, state: State | None = None, check_health: bool = True) -> Built:
    """Build the site for ``repo`` (and its state store) into ``out``."""
    return render(collect(repo, state or State.of(repo), check_health), out)
