"""Streamlit glue for the app (``streamlit run app.py``): the page registry and how errors are shown.

Pages stay thin: they read widgets, call ``lr0fm_core``, and draw. Model, head and sweep caches
and the sidebar live in :mod:`lr0fm_core.ui.session`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import streamlit as st


@dataclass(frozen=True)
class PageEntry:
    """One page of the app: its script (relative to the app folder), title and icon."""

    file: str
    title: str
    icon: str


PAGES = (
    PageEntry("pages/1_Resolution_explorer.py", "Resolution explorer", ":material/photo_size_select_large:"),
    PageEntry("pages/2_Leaderboard.py", "Leaderboard", ":material/leaderboard:"),
    PageEntry("pages/3_Grad-CAM.py", "Grad-CAM", ":material/center_focus_strong:"),
    PageEntry("pages/4_Inside_the_model.py", "Inside the model", ":material/layers:"),
)


def available_pages(app_dir: str | Path) -> list[PageEntry]:
    """The registered pages whose script exists under ``app_dir``, in registry order."""
    return [page for page in PAGES if (Path(app_dir) / page.file).is_file()]


def ensure_app_shell() -> None:
    """Call first in every page: make sure the page runs inside ``app.py`` (navigation, sidebar).

    Because ``pages/`` exists, Streamlit serves the first request after a server start in its
    legacy multipage mode until ``app.py`` calls ``st.navigation``; a first visit straight to a
    page URL then runs the page script alone, without the model sidebar. This switches that mode
    off and reruns, which goes through ``app.py`` to the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


@contextlib.contextmanager
def shown_errors(context: str, stop: bool = True):
    """Show a ``ValueError``/``OSError`` raised inside as ``st.error("<context>: <message>")``, no traceback.

    The engine's messages already name the offending input and say how to fix it. With
    ``stop=True`` the page ends there (``st.stop()``); otherwise it goes on after the block.
    """
    try:
        yield
    except (ValueError, OSError) as exc:
        st.error(f"{context}: {exc}")
        if stop:
            st.stop()
