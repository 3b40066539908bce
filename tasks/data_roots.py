"""The folders a spec's file source may read from (``FINML_DATA_ROOTS``). See ``docs/operations.md``
(Sources only read)."""

from __future__ import annotations

from pathlib import Path


def outside_data_roots(path: str | Path, spec_folder: Path | None) -> tuple[Path, str | None]:
    """``(the file resolved, None)`` when ``path`` — symlinks resolved — lies below one of the
    data roots (:meth:`models.settings.Settings.data_root_paths`), else ``(resolved, the reason)``:
    a message naming the file, what it resolves to, the roots and the setting.

    A spec could otherwise read any file the worker can (``/proc/self/environ`` as a CSV) into
    training data, reports and model cards.
    """
    from models.settings import get_settings

    settings = get_settings()
    roots = settings.data_root_paths(spec_folder)
    resolved = Path(path).resolve()
    if any(resolved == root or root in resolved.parents for root in roots):
        return resolved, None
    shown = f"{path} (resolves to {resolved})" if str(resolved) != str(path) else str(path)
    where = (f"FINML_DATA_ROOTS={settings.data_roots}" if (settings.data_roots or "").strip()
             else "FINML_DATA_ROOTS is unset: the spec file's folder" if spec_folder is not None
             else "FINML_DATA_ROOTS is unset: the current folder, for a spec built in code")
    return resolved, (f"{shown}: a file source may only read below the data roots {[str(r) for r in roots]} "
                      f"({where}); move the file there or add its folder to FINML_DATA_ROOTS")
