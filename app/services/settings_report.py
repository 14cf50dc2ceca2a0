"""Every effective setting with where it came from and what it may be: for the admin panel's
settings page and `cdb settings`. Secrets are masked, URLs shown without their password."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import SecretStr

from app.config import RANGES, SECRET_FIELDS, Settings, redact_url
from app.paths import checkout_root

MASK = "***"
URL_FIELDS = ("redis_url", "database_url", "mexc_base_url", "flower_url")


@dataclass(frozen=True)
class SettingRow:
    name: str  # the environment variable, e.g. MAX_POSITION_PCT
    value: str  # the value in force ("***" for a set secret, "" when unset)
    source: str  # "environment", ".env", "default", or "default (... gave ...)" when replaced
    default: str
    allowed: str  # "0.01..0.25", "one of ...", "" when anything of the type goes
    secret: bool
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "source": self.source,
            "default": self.default,
            "allowed": self.allowed,
            "secret": self.secret,
            "description": self.description,
        }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _allowed(name: str, field: Any) -> str:
    if name in RANGES:
        low, high = RANGES[name]
        return f"{'-inf' if low is None else low}..{'inf' if high is None else high}"
    bounds = {type(m).__name__: m for m in field.metadata}
    if "Ge" in bounds and "Le" in bounds:
        return f"{bounds['Ge'].ge}..{bounds['Le'].le}"
    if "Gt" in bounds:
        return f"> {bounds['Gt'].gt}"
    args = getattr(field.annotation, "__args__", ())
    if args and all(isinstance(a, str) for a in args):
        return "one of " + ", ".join(args)
    return ""


def template_descriptions(path: Path | None = None) -> dict[str, str]:
    """The comments of .env.template, by variable: what each one is for."""
    root = checkout_root()
    path = path or (root / ".env.template" if root else None)
    if path is None or not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.partition("=")
        _, _, comment = rest.partition("#")
        out[name.strip()] = comment.strip()
    return out


def settings_report(settings: Settings, environ: dict[str, str] | None = None) -> list[SettingRow]:
    environ = dict(os.environ if environ is None else environ)
    in_env = {key.upper() for key in environ}
    in_file: set[str] = set()
    if settings.env_file is not None:
        in_file = {key.upper() for key in dotenv_values(settings.env_file)}
    replaced = settings.replaced_values
    descriptions = template_descriptions()
    rows = []
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        secret = name in SECRET_FIELDS
        value = getattr(settings, name)
        shown = _text(value)
        if name in URL_FIELDS and shown:
            shown = redact_url(shown)
        if variable in in_env:
            source = "environment"
        elif variable in in_file:
            source = ".env"
        else:
            source = "default"
        if name in replaced:
            used, why = replaced[name]
            source = f"{used} ({source} gave {why})"
        default = "" if field.is_required() else _text(field.get_default(call_default_factory=True))
        rows.append(
            SettingRow(
                name=variable,
                value=shown,
                source=source,
                default=MASK if secret and default else default,
                allowed=_allowed(name, field),
                secret=secret,
                description=descriptions.get(variable, ""),
            )
        )
    return rows


def derived(settings: Settings) -> dict[str, str]:
    """What the settings resolve to: the folders, the database and the broker in use."""
    return {
        "state_dir": str(settings.state_dir),
        "env_file": str(settings.env_file) if settings.env_file else "",
        "database": redact_url(settings.sqlalchemy_url),
        "broker": redact_url(settings.broker_url),
    }
