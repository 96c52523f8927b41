"""Settings: defaults here, overridden by a config file, then by ``IMR_*`` environment variables, then by
command-line flags.

The config file is TOML (``imr-adapter.toml`` in the working folder, or the file named by
``IMR_CONFIG``); environment variables use the prefix ``IMR_`` and ``__`` for nesting, e.g.
``IMR_EHR_URL`` or ``IMR_SANDBOX__EHR_PORT``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

__all__ = ["DEFAULT_SANDBOX_DIR", "SEKMET_VERSION", "SandboxSettings", "Settings", "load_settings"]

#: The sandbox FHIR server, pinned: its own virtualenv, never the project's.
SEKMET_VERSION = "0.1.1"
DEFAULT_SANDBOX_DIR = Path(__file__).resolve().parent.parent / ".sandbox"
DEFAULT_CONFIG_FILE = "imr-adapter.toml"


class SandboxSettings(BaseModel):
    """The two local sandbox FHIR servers (sekmet-fhir) that ``imr-adapter sandbox`` runs."""

    dir: Path = DEFAULT_SANDBOX_DIR
    host: str = "127.0.0.1"
    ehr_port: int = 8181
    payer_port: int = 8182
    start_timeout: float = 90.0

    def url(self, name: str) -> str:
        port = self.ehr_port if name == "ehr" else self.payer_port
        return f"http://{self.host}:{port}/fhir"


class Settings(BaseSettings):
    """Everything the adapter can be configured with."""

    model_config = SettingsConfigDict(env_prefix="IMR_", env_nested_delimiter="__", extra="forbid")

    #: FHIR base URLs of the EHR and payer servers; by default the local sandbox servers.
    ehr_url: str | None = None
    payer_url: str | None = None
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    @property
    def ehr(self) -> str:
        return self.ehr_url or self.sandbox.url("ehr")

    @property
    def payer(self) -> str:
        return self.payer_url or self.sandbox.url("payer")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("IMR_CONFIG", DEFAULT_CONFIG_FILE))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)


def load_settings(**overrides: object) -> Settings:
    """Settings from the config file and environment, with explicit overrides (command-line flags) on top."""
    return Settings.model_validate({k: v for k, v in overrides.items() if v is not None})
