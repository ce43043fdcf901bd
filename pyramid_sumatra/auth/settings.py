"""Reading a plugin's ini settings, with start-up errors that name the setting."""

from __future__ import annotations

import os
from typing import Any

from pyramid.settings import asbool

from ..storage.plugins import PluginError


class ConfigError(PluginError):
    """A login setting is missing or wrong: the app does not start, and says which."""


class SettingsReader:
    def __init__(self, settings: dict[str, Any], prefix: str):
        self.settings = settings
        self.prefix = prefix

    def optional(self, name: str) -> str | None:
        value = str(self.settings.get(self.prefix + name, "") or "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError(f"{self.prefix}{name} is required")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise ConfigError(f"{self.prefix}{name} must be true or false, not {value!r}")
        return asbool(value)

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{self.prefix}{name} must be a number, not {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(f"{self.prefix}{name} must be between {low:g} and {high:g}")
        return number

    def secret(self, name: str) -> str | None:
        """A secret never sits in the ini: ``NAME_env`` names the environment variable."""
        if self.optional(name):
            raise ConfigError(f"{self.prefix}{name} must not be in the ini file: set "
                              f"{self.prefix}{name}_env to the name of an environment "
                              "variable holding it")
        variable = self.optional(name + "_env")
        if variable is None:
            return None
        value = os.environ.get(variable)
        if not value:
            raise ConfigError(f"{self.prefix}{name}_env names the environment variable "
                              f"{variable!r}, which is not set")
        return value
