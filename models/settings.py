"""Platform settings, read from the environment (prefix ``FINML_``) by pydantic-settings.

Prefect's own settings (``PREFECT_API_URL``, ``PREFECT_HOME`` ...) stay Prefect's and are not
mirrored here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BUILTIN_SPECS_DIR = Path(__file__).resolve().parent / "specs"


class Settings(BaseSettings):
    """Where the platform reads specs and writes its outputs.

    Attributes:
        registry_dir: root of the model registry directory (``FINML_REGISTRY_DIR``).
        reports_dir: root for run reports that are not part of a registry version, such as
            the evidence of a rejected challenger (``FINML_REPORTS_DIR``).
        specs_dir: folder of ``<model>.yaml`` spec files (``FINML_SPECS_DIR``); defaults to
            the built-in specs shipped in ``models/specs``.
        task_runner: how candidates of a model, and the models of ``train_all``, run:
            ``threads`` (a thread pool, the default), ``sequential``, or ``dask``
            (``FINML_TASK_RUNNER``).
        max_workers: threads of the thread pool (``FINML_MAX_WORKERS``; default: one per core).
        dask_address: a Dask scheduler address such as ``tcp://10.0.0.5:8786``
            (``FINML_DASK_ADDRESS``); setting it selects the Dask runner (``prefect-dask``, the
            ``dask`` extra). Dask needs a real Prefect API (``PREFECT_API_URL``).
        data_roots: folders a spec's ``file`` source may read from, separated by ``os.pathsep``
            (``:`` on POSIX) (``FINML_DATA_ROOTS``); unset: the spec file's folder and below
            (see :meth:`data_root_paths`).
        max_batch_rows: the most rows one file source or batch may hold
            (``FINML_MAX_BATCH_ROWS``, default 5,000,000); checked before the file is read whole.
        memory_check: refuse a file whose estimated loading memory exceeds the memory available
            (``FINML_MEMORY_CHECK``, default true); see ``docs/performance.md`` (Memory).
        signing_key_file: Ed25519 private key (PEM) that signs every history line
            (``FINML_SIGNING_KEY_FILE``; the training role only, outside the registry).
        verify_key_file: Ed25519 public key (PEM) that every load checks the history's
            signatures with (``FINML_VERIFY_KEY_FILE``; scoring workers). Either key turns on
            signed mode (``docs/registry.md``, Integrity).
        allow_library_mismatch: load a version trained with another major.minor release of
            scikit-learn, NumPy, Keras or TensorFlow than the installed one, with a warning
            (``FINML_ALLOW_LIBRARY_MISMATCH``, default false: refused; ``docs/registry.md``,
            Library versions).
        user: who acts, recorded as ``who`` on every history line (``FINML_USER``; unset: the
            operating-system user; a deployment run's starter comes first, see
            :mod:`models.identity`).
        ui_url: the address of the web front end (``finml ui``), e.g. ``http://127.0.0.1:4400``
            (``FINML_UI_URL``; ``finml server start`` sets it for its workers). When set, the
            Prefect artifacts link to its pages and reports instead of local ``file://`` paths
            (:func:`tasks.ui_files.ui_link`).
        serve_token: the bearer token ``finml serve`` requires on every ``/v1`` request
            (``FINML_SERVE_TOKEN``); needed to bind to any address but the loopback one
            (``docs/serving.md``, Security).
        serve_max_body_bytes: the largest request body the service reads (``FINML_SERVE_MAX_BODY_BYTES``,
            default 4 MiB, about 16,000 credit records); a larger one is refused with 413.
        serve_max_records: the most records one request may hold (``FINML_SERVE_MAX_RECORDS``, default
            10,000); more are refused with 413.
        serve_ledger_flush_seconds: the longest a served record waits before it is appended to the
            ledger (``FINML_SERVE_LEDGER_FLUSH_SECONDS``, default 2; ``docs/serving.md``, Ledger).
    """

    model_config = SettingsConfigDict(env_prefix="FINML_", extra="ignore")

    registry_dir: Path = Field(default=Path("registry"))
    reports_dir: Path = Field(default=Path("reports"))
    specs_dir: Path = Field(default=BUILTIN_SPECS_DIR)
    task_runner: Literal["threads", "sequential", "dask"] = "threads"
    max_workers: int | None = Field(default=None, ge=1)
    dask_address: str | None = None
    data_roots: str | None = None

    def data_root_paths(self, spec_folder: str | Path | None) -> list[Path]:
        """The folders a file source may read from, resolved (symlinks followed): the entries of
        ``FINML_DATA_ROOTS`` (relative ones against the current folder), or, when it is unset or
        empty, ``spec_folder`` (the current folder for a spec built in code, which has none)."""
        entries = [e.strip() for e in (self.data_roots or "").split(os.pathsep) if e.strip()]
        if not entries:
            entries = [str(spec_folder) if spec_folder is not None else "."]
        return [Path(e).expanduser().resolve() for e in entries]
    max_batch_rows: int = Field(default=5_000_000, ge=1)
    memory_check: bool = True
    signing_key_file: Path | None = None
    verify_key_file: Path | None = None
    allow_library_mismatch: bool = False
    user: str | None = None
    ui_url: str | None = None
    serve_token: SecretStr | None = None
    serve_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    serve_max_records: int = Field(default=10_000, ge=1)
    serve_ledger_flush_seconds: float = Field(default=2.0, gt=0)


def get_settings() -> Settings:
    """Read the settings from the environment now (cheap; never cached, so tests can change it)."""
    return Settings()
