"""The extension's settings: each one's name, default and allowed range, and the one validator for all of them.

Why a module of its own: the config API, the writer, the classifier and the memory manager all read settings,
and a value must be refused the same way wherever it comes from (ComfyUI's settings dialog, curl, a stored row
written by an older version). A `Field` declares a setting; `validate` applies changes to the current values
or raises `SettingsError` naming the field and what it allows. Values are stored in our database
(`UsageStore.load_settings` / `save_settings`), so they apply at once and survive a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..support.logs import warn_once


class SettingsError(ValueError):
    """A value we refuse; the message names the field and what it allows."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Field:
    """One setting. `kind` is bool, int, float, str or list (a list of short names, e.g. model types)."""

    name: str
    default: object
    kind: type
    low: float | None = None
    high: float | None = None
    help: str = ""

    def check(self, value):
        """`value` if this field allows it (ints are fine for a float field), else SettingsError."""
        if self.kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value):
                raise SettingsError(self.name, f"{self.name} must be a list of names")
            return sorted(set(value))
        numeric = self.kind in (int, float)
        allowed = (int, float) if self.kind is float else self.kind
        if isinstance(value, bool) != (self.kind is bool) or not isinstance(value, allowed):
            raise SettingsError(self.name, f"{self.name} must be {self._allowed()}")
        if numeric and not (self.low <= value <= self.high):
            raise SettingsError(self.name, f"{self.name} must be {self._allowed()}; got {value}")
        return self.kind(value)

    def describe(self) -> dict:
        """The field as the config API shows it, so a client can build its own form and checks."""
        return {"name": self.name, "type": self.kind.__name__, "default": self.default,
                "min": self.low, "max": self.high, "help": self.help}

    def _allowed(self) -> str:
        if self.kind is bool:
            return "true or false"
        if self.kind in (int, float):
            noun = "a whole number" if self.kind is int else "a number"
            return f"{noun} from {_number(self.low)} to {_number(self.high)}"
        return "a string"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def defaults(fields: Iterable[Field]) -> dict:
    return {f.name: f.default for f in fields}


def validate(fields: Iterable[Field], current: Mapping, changes) -> dict:
    """The values after applying `changes` (a JSON object of some fields) to `current`, every field checked."""
    by_name = {f.name: f for f in fields}
    if not isinstance(changes, dict):
        raise SettingsError("", "send a JSON object of settings, e.g. {\"tracking\": false}")
    unknown = sorted(set(changes) - set(by_name))
    if unknown:
        raise SettingsError(unknown[0], f"unknown setting {unknown[0]!r}; known: {', '.join(by_name)}")
    values = {**defaults(by_name.values()), **{k: v for k, v in current.items() if k in by_name}}
    values.update({name: by_name[name].check(value) for name, value in changes.items()})
    return values


def restore(fields: Iterable[Field], stored: Mapping, source: str) -> dict:
    """Stored values, each checked again: one that is no longer valid (an older version wrote it) falls back
    to its default with one log line, instead of breaking the extension."""
    values = {}
    for field in fields:
        try:
            values[field.name] = field.check(stored[field.name]) if field.name in stored else field.default
        except SettingsError as error:
            warn_once(f"setting:{source}:{field.name}", "ignoring the stored %s setting (%s)", field.name, error)
            values[field.name] = field.default
    return values


# --------------------------------------------------------------------------- the main config


CONFIG_FIELDS = (
    Field("tracking", True, bool, help="Record prompts. Off means the hook does nothing at all."),
    Field("consider_days", 30, int, 1, 3650, help="Days without use after which an item is worth a look."),
    Field("safe_days", 60, int, 1, 3650, help="Days without use after which an item is suggested for removal."),
    Field("retention_days", 180, int, 7, 3650, help="Days of per-prompt detail kept before it folds into daily totals."),
    Field("track_loras", False, bool, help="Track LoRA files too (off by default: they are many and cheap)."),
    Field("model_types", [], list, help="Model folder types to track; empty means every type except LoRAs."),
    Field(
        "allow_remote_actions", False, bool,
        help="Allow quarantine, restore, delete and pack actions while ComfyUI listens beyond loopback (--listen 0.0.0.0).",
    ),
)


def check_config(values: dict) -> dict:
    """Rules that involve two fields of CONFIG_FIELDS."""
    if values["consider_days"] >= values["safe_days"]:
        raise SettingsError(
            "safe_days",
            f"safe_days ({values['safe_days']}) must be greater than consider_days ({values['consider_days']})",
        )
    return values


class Config:
    """The current values of one group of fields, read by any thread and replaced whole on each change.

    Reading is one dict lookup (the hook reads `tracking` on every prompt); a change builds a new dict, so a
    reader never sees half of an update.
    """

    def __init__(self, fields: Iterable[Field], values: Mapping | None = None):
        self.fields = tuple(fields)
        self._values = {**defaults(self.fields), **(values or {})}
        self._lock = threading.Lock()

    def __getitem__(self, name: str):
        return self._values[name]

    def as_dict(self) -> dict:
        return dict(self._values)

    def describe(self) -> dict:
        """The values in force and each field's default, range and help: what both config routes answer, so a
        client (the settings dialog) builds its form from the server instead of keeping a copy that drifts."""
        return {"config": self.as_dict(), "fields": [field.describe() for field in self.fields]}

    def replace(self, values: Mapping) -> None:
        with self._lock:
            self._values = dict(values)
