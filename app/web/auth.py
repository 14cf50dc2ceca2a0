"""Admin login, the guard every admin page and action passes, and CSRF tokens.

CSRF is a per-session random token kept in the signed session cookie and sent back in a
hidden `csrf_token` field by every form; each POST must carry it. That is the whole of
what Flask-WTF's CSRFProtect would do here, in twenty lines and without a dependency or a
form library the panel has no other use for.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from app.config import Settings
from app.services.operator import Actor

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/admin", template_folder="templates")

CREDENTIALS_FILE = "credentials.env"  # where `cdb up` writes the logins it generated
SESSION_USER = "admin_user"
SESSION_CSRF = "csrf_token"
HASH_METHODS = ("pbkdf2:", "scrypt:")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def password_matches(settings: Settings, username: str, password: str) -> bool:
    """True for ADMIN_USERNAME with ADMIN_PASSWORD (plain, or a werkzeug hash of it)."""
    if settings.admin_password is None:
        return False
    expected = settings.admin_password.get_secret_value()
    # Both sides are compared in full, so the time taken tells nothing about which was wrong.
    user_ok = hmac.compare_digest(_digest(username), _digest(settings.admin_username))
    if expected.startswith(HASH_METHODS) and expected.count("$") >= 2:
        password_ok = check_password_hash(expected, password)
    else:
        password_ok = hmac.compare_digest(_digest(password), _digest(expected))
    return user_ok and password_ok


def current_user() -> str | None:
    """The logged-in user; a session of a since renamed ADMIN_USERNAME no longer counts."""
    user = session.get(SESSION_USER)
    return user if user == current_app.extensions["settings"].admin_username else None


def current_actor() -> Actor:
    """The logged-in panel user as the audit trail records them."""
    return Actor(current_user() or "", "panel")


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get(SESSION_CSRF, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "the form's CSRF token is missing or wrong: reload the page and submit again")


def require_login() -> Response | None:
    """The admin blueprint's before_request: log in first, then a valid CSRF token on POST."""
    if request.endpoint == "admin.static":
        return None
    if current_user() is None:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403, "log in first")
    if request.method == "POST":
        check_csrf()
    return None


def login_hint(settings: Settings) -> dict[str, str | bool]:
    """Where the login is kept, for the login page: never the password itself.

    `cdb up` generates a missing ADMIN_PASSWORD into <state>/credentials.env; the page says
    so when that file holds the password in force (compared here, never shown)."""
    path = settings.state_dir / CREDENTIALS_FILE
    hint: dict[str, str | bool] = {
        "username": settings.admin_username,
        "credentials": str(path),
        "generated": False,
        "env_file": str(settings.env_file) if settings.env_file else "",
    }
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    except OSError:
        lines = []
    stored = dict(line.partition("=")[::2] for line in lines if "=" in line)
    in_force = settings.admin_password.get_secret_value() if settings.admin_password else None
    if in_force is not None and "ADMIN_PASSWORD" in stored:
        hint["generated"] = hmac.compare_digest(
            _digest(stored["ADMIN_PASSWORD"]), _digest(in_force)
        )
    return hint


def _safe_next(target: str | None) -> str:
    """Only a path inside the panel: never an open redirect to another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/admin"):
            return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    settings: Settings = current_app.extensions["settings"]
    enabled = settings.admin_password is not None
    if request.method == "POST":
        check_csrf()
        username = request.form.get("username", "")
        if enabled and password_matches(settings, username, request.form.get("password", "")):
            session.clear()  # a fresh session (and CSRF token) for the logged-in user
            session.permanent = True
            session[SESSION_USER] = settings.admin_username
            log.info("admin login", extra={"user": settings.admin_username})
            return redirect(_safe_next(request.form.get("next")))
        log.warning("admin login refused", extra={"remote": request.remote_addr})
        error = "Wrong username or password." if enabled else None
        status = 401 if enabled else 403
        page = render_template(
            "admin/login.html",
            enabled=enabled,
            error=error,
            next=request.form.get("next", ""),
            hint=login_hint(settings),
        )
        return page, status
    return render_template(
        "admin/login.html",
        enabled=enabled,
        error=None,
        next=request.args.get("next", ""),
        hint=login_hint(settings),
    )


@bp.post("/logout")
def logout() -> Response:
    if current_user() is None:
        abort(403, "log in first")
    check_csrf()
    session.clear()
    return redirect(url_for("auth.login"))


def init_auth(app: Flask) -> None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="cdb_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
    )
    app.jinja_env.globals.update(csrf_token=csrf_token, current_user=current_user)
    app.register_blueprint(bp)
