"""Platform settings, read from the environment (prefix ``FINML_``) by pydantic-settings.

Prefect's own settings (``PREFECT_API_URL``, ``PREFECT_HOME`` ...) stay Prefect's and are not
mirrored here.
"""

from __future__ import annotations

from pathlib import Path

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
    """

    model_config = SettingsConfigDict(env_prefix="FINML_", extra="ignore")

    registry_dir: Path = Field(default=Path("registry"))
    reports_dir: Path = Field(default=Path("reports"))
    specs_dir: Path = Field(default=BUILTIN_SPECS_DIR)


def get_settings() -> Settings:
    """Read the settings from the environment now (cheap; never cached, so tests can change it)."""
    return Settings()
