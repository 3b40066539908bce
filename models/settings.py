"""Platform settings, read from the environment (prefix ``FINML_``) by pydantic-settings.

Prefect's own settings (``PREFECT_API_URL``, ``PREFECT_HOME`` ...) stay Prefect's and are not
mirrored here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
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
        signing_key_file: Ed25519 private key (PEM) that signs every history line
            (``FINML_SIGNING_KEY_FILE``; the training role only, outside the registry).
        verify_key_file: Ed25519 public key (PEM) that every load checks the history's
            signatures with (``FINML_VERIFY_KEY_FILE``; scoring workers). Either key turns on
            signed mode (``docs/registry.md``, Integrity).
    """

    model_config = SettingsConfigDict(env_prefix="FINML_", extra="ignore")

    registry_dir: Path = Field(default=Path("registry"))
    reports_dir: Path = Field(default=Path("reports"))
    specs_dir: Path = Field(default=BUILTIN_SPECS_DIR)
    task_runner: Literal["threads", "sequential", "dask"] = "threads"
    max_workers: int | None = Field(default=None, ge=1)
    dask_address: str | None = None
    signing_key_file: Path | None = None
    verify_key_file: Path | None = None


def get_settings() -> Settings:
    """Read the settings from the environment now (cheap; never cached, so tests can change it)."""
    return Settings()
