"""Files the web front end serves and renders: a path under the registry or reports folder checked
before it is opened (no ``..``, no absolute path, no hidden entry, no link, only document and
image types), and the model card rendered from markdown to HTML (markdown-it-py, raw HTML off).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

SERVED_SUFFIXES = {".png": "image/png", ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8",
                   ".md": "text/markdown; charset=utf-8", ".json": "application/json", ".csv": "text/csv; charset=utf-8",
                   ".txt": "text/plain; charset=utf-8"}
"""The file types served, with their media types: reports, plots and cards. Pickles, Keras files,
Parquet, the lock and the JSON-lines files are never served."""


def safe_file(root: Path, rel: str) -> Path | None:
    """The file ``rel`` (a URL path, ``/``-separated, already percent-decoded) under ``root``, or
    None when it must not be served: empty, absolute, with a ``.``/``..`` or hidden component
    (``.lock``, ``.tmp-*``), an empty one (``a//b``), a backslash or NUL, a type outside :data:`SERVED_SUFFIXES`, missing,
    not a regular file, or reached through a symbolic link anywhere on the way (the resolved path
    must equal the joined one, inside the resolved root)."""
    if not rel or "\x00" in rel or "\\" in rel or rel.startswith("/"):
        return None
    parts = rel.split("/")  # as written: PurePosixPath would drop "." and empty components
    if any(not p or p.startswith(".") for p in parts):  # "", ".", "..", ".lock", ".tmp-*"
        return None
    if PurePosixPath(rel).suffix.lower() not in SERVED_SUFFIXES:
        return None
    base = Path(root).resolve()
    path = base.joinpath(*parts)
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if real != path or not real.is_relative_to(base):
        return None
    try:
        if not stat.S_ISREG(os.lstat(real).st_mode):
            return None
    except OSError:
        return None
    return real


def read_served(path: Path) -> bytes:
    """The bytes of a file :func:`safe_file` returned, opened without following a link (a link
    swapped in after the check is refused with OSError)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def media_type(path: Path) -> str:
    """The media type of a served file, by its suffix."""
    return SERVED_SUFFIXES[path.suffix.lower()]


def relative_report(path: str | None, reports_dir: Path) -> str | None:
    """``path`` relative to the reports folder (``/``-separated), for a ``/reports/...`` link; None
    when it lies outside it (or is None)."""
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(Path(reports_dir).resolve()).as_posix()
    except ValueError:
        return None


def render_card(markdown: str, base_url: str) -> str:
    """A model card's markdown as HTML (CommonMark with tables; raw HTML in the card is escaped,
    not rendered). Relative image and link targets (``reports/roc_curve.png``) are rewritten to
    ``base_url`` + target, the URL of the version's folder in the front end."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    base = base_url.rstrip("/") + "/"
    for token in tokens:
        for child in token.children or []:
            attr = "src" if child.type == "image" else "href" if child.type == "link_open" else None
            if attr is None:
                continue
            target = str(child.attrGet(attr) or "")
            if target and "://" not in target and not target.startswith(("/", "#", "mailto:")):
                child.attrSet(attr, base + target)
    return md.renderer.render(tokens, md.options, {})


def ui_link(link: str, settings=None) -> str:
    """``link`` as the web front end's address when ``FINML_UI_URL`` is set: a ``file://`` URI of a
    file under the reports folder becomes ``<ui>/reports/<path>``, under the registry
    ``<ui>/registry/<path>`` (:mod:`flows.ui` serves both); a relative page (``models/m``) becomes
    ``<ui>/models/m``. Without the setting, or for a file outside both folders, ``link`` unchanged."""
    from urllib.parse import quote, unquote, urlparse

    from models.settings import get_settings

    settings = settings or get_settings()
    base = (settings.ui_url or "").rstrip("/")
    if not base:
        return link
    parsed = urlparse(link)
    if parsed.scheme != "file":
        return link if parsed.scheme else f"{base}/{link.lstrip('/')}"
    path = Path(unquote(parsed.path)).resolve()
    for prefix, root in (("reports", settings.reports_dir), ("registry", settings.registry_dir)):
        try:
            return f"{base}/{prefix}/{quote(path.relative_to(Path(root).resolve()).as_posix())}"
        except ValueError:
            continue
    return link


def file_reference(path: str | Path, settings=None) -> str:
    """How an artifact's markdown names a local file (a rejected run's model card, an Evidently
    report): with ``FINML_UI_URL`` set and the file under the reports or registry folder, its
    address in the web front end as an autolink (``<http://ui/reports/...>``, :func:`ui_link`);
    else ``path`` as given, in backticks, as without the front end."""
    link = ui_link(Path(path).resolve().as_uri(), settings)
    return f"`{path}`" if link.startswith("file:") else f"<{link}>"
