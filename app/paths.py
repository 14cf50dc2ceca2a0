"""Where the project keeps its state and reads its `.env`: one absolute place, wherever a
command is run from.

In a source checkout (the `app` package next to `pyproject.toml`, as after `git clone` and
`scripts/run.sh`) that is the checkout itself: `<checkout>/.env` and `<checkout>/var/`.
Installed elsewhere (a wheel in site-packages) there is no project folder, so the state goes
to `$XDG_STATE_HOME/claire-de-binaire` (default `~/.local/state/claire-de-binaire`) and the
`.env` is read from the current folder. `CDB_ENV_FILE` names another `.env`; a relative
`STATE_DIR` is taken relative to the project folder, never to the current one.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "claire-de-binaire"


def checkout_root() -> Path | None:
    """The source checkout this code runs from, or None for an installed package."""
    if (PACKAGE_ROOT / "pyproject.toml").is_file() and (PACKAGE_ROOT / "app").is_dir():
        return PACKAGE_ROOT
    return None


def project_root() -> Path:
    """The folder relative paths in the settings are taken from."""
    return checkout_root() or Path.cwd()


def default_state_dir() -> Path:
    root = checkout_root()
    if root is not None:
        return root / "var"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / APP_NAME


def resolve_path(value: Path | str) -> Path:
    """An absolute path: as given when absolute, else under the project root."""
    path = Path(str(value).strip()).expanduser()
    return path if path.is_absolute() else (project_root() / path).resolve()


def resolve_state_dir(value: Path | str | None) -> Path:
    if value is None or str(value).strip() == "":
        return default_state_dir()
    return resolve_path(value)


def default_env_file() -> Path:
    explicit = os.environ.get("CDB_ENV_FILE")
    return resolve_path(explicit) if explicit else project_root() / ".env"
