"""Admin login, the guard every admin page and action passes, and CSRF tokens.

Sessions are kept server-side (app/web/sessions.py): the signed cookie carries a random
session token and this browser's CSRF token, nothing else. Every admin request looks the
session up; logging out revokes it; it ends after 8 h whatever the activity, or after 30 min
without a request. Logins are throttled per client address and per username
(app/web/throttle.py) and every attempt is recorded.

CSRF is a per-browser random token kept in the signed session cookie and sent back in a
hidden `csrf_token` field by every form; each POST must carry it. That is the whole of
what Flask-WTF's CSRFProtect would do here, in twenty lines and without a dependency or a
form library the panel has no other use for.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from app.config import Settings
from app.config_checks import MIN_ADMIN_PASSWORD
from app.extensions import db
from app.services.operator import Actor
from app.web import limits, sessions, throttle

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/admin", template_folder="templates")

CREDENTIALS_FILE = "credentials.env"  # where `cdb up` writes the logins it generated
SESSION_TOKEN = "admin_session"  # the server-side session's token, in the signed cookie
SESSION_CSRF = "csrf_token"
HASH_METHODS = ("pbkdf2:", "scrypt:")
MAX_NEXT = limits.FORM_FIELDS["next"]


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


def _now() -> datetime:
    return datetime.now(UTC)


def client_address() -> str:
    """The client's address: the peer's, or X-Forwarded-For's when TRUSTED_PROXIES says
    which proxies to believe (werkzeug's ProxyFix has already applied it)."""
    return (request.remote_addr or "unknown")[: throttle.MAX_KEY]


def _session_token() -> str | None:
    token = session.get(SESSION_TOKEN)
    return token if isinstance(token, str) and token else None


def _check_session() -> sessions.Verdict:
    settings: Settings = current_app.extensions["settings"]
    token = _session_token()
    if token is None or settings.admin_password is None:  # no password: the panel is off
        return sessions.Verdict(None)
    password = settings.admin_password.get_secret_value()
    verdict = sessions.check_session(db, token, settings.admin_username, password, _now())
    if verdict.username is None:
        session.pop(SESSION_TOKEN, None)
    return verdict


def current_user() -> str | None:
    """The logged-in user: a live server-side session of ADMIN_USERNAME, looked up once per
    request."""
    if "admin_verdict" not in g:
        g.admin_verdict = _check_session()
    return g.admin_verdict.username


def current_actor() -> Actor:
    """The logged-in panel user as the audit trail records them."""
    return Actor(current_user() or "", "panel")


def csrf_token() -> str:
    """This browser's CSRF token, made on first use."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = limits.form().get("csrf_token", "")
    expected = session.get(SESSION_CSRF, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "the form's CSRF token is missing or wrong: reload the page and submit again")


def require_login() -> Response | None:
    """The admin blueprint's before_request: a live session first, then a valid CSRF token
    and fields within their limits on POST."""
    if request.endpoint == "admin.static":
        return None
    if current_user() is None:
        if request.method in ("GET", "HEAD"):
            ended = g.admin_verdict.ended
            if ended:
                flash(f"Your session has ended ({ended}): log in again.", "info")
            back = request.full_path.rstrip("?")
            return redirect(url_for("auth.login", next=back if len(back) <= MAX_NEXT else None))
        abort(403, "log in first")
    if request.method == "POST":
        check_csrf()
    limits.check_request()
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
    if target and len(target) <= MAX_NEXT and not limits.CONTROL.search(target):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/admin"):
            return target
    return url_for("admin.dashboard")


def _login_page(
    settings: Settings, error: str | None, status: int, next_: str, **headers: str
) -> tuple[str, int, dict[str, str]]:
    page = render_template(
        "admin/login.html",
        enabled=settings.admin_password is not None,
        error=error,
        next=next_ if len(next_) <= MAX_NEXT else "",
        hint=login_hint(settings),
    )
    return page, status, headers


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int] | tuple[str, int, dict[str, str]]:
    settings: Settings = current_app.extensions["settings"]
    enabled = settings.admin_password is not None
    if request.method == "POST":
        check_csrf()
        limits.check_request()
        username = request.form.get("username", "")
        next_ = request.form.get("next", "")
        if not enabled:
            log.warning("admin login refused: the panel is disabled (no ADMIN_PASSWORD)")
            return render_template(
                "admin/login.html",
                enabled=enabled,
                error=None,
                next=next_,
                hint=login_hint(settings),
            ), 403
        remote, now = client_address(), _now()
        wait = throttle.throttled(db, remote, username, now)
        if wait is not None:
            throttle.record(db, remote, username, False, now)
            log.warning(
                "admin login refused: throttled",
                extra={
                    "remote": remote,
                    "username": username,
                    "by": wait.by,
                    "failures": wait.failures,
                    "retry_after_sec": wait.seconds,
                },
            )
            whose = "from your address" if wait.by == "address" else "for this username"
            error = (
                f"Too many failed logins {whose}: wait {_wait_text(wait.seconds)} before "
                f"trying again. After {throttle.FREE_FAILURES} failures within "
                f"{throttle.WINDOW.seconds // 60} min every further attempt waits twice as "
                f"long (at most {throttle.MAX_WAIT.seconds // 60} min); an attempt made "
                "while waiting makes the wait longer."
            )
            return _login_page(settings, error, 429, next_, **{"Retry-After": str(wait.seconds)})
        ok = password_matches(settings, username, request.form.get("password", ""))
        throttle.record(db, remote, username, ok, now)
        if ok:
            sessions.revoke(db, _session_token(), now)  # the session this browser held, if any
            password = settings.admin_password.get_secret_value()  # type: ignore[union-attr]
            token = sessions.open_session(db, settings.admin_username, password, remote, now)
            session.clear()  # a fresh cookie (and CSRF token) for the logged-in user
            session.permanent = True
            session[SESSION_TOKEN] = token
            log.info("admin login", extra={"user": settings.admin_username, "remote": remote})
            return redirect(_safe_next(next_))
        log.warning(
            "admin login refused: wrong username or password",
            extra={"remote": remote, "username": username},
        )
        return _login_page(settings, "Wrong username or password.", 401, next_)
    next_ = request.args.get("next", "")
    return render_template(
        "admin/login.html",
        enabled=enabled,
        error=None,
        next=next_ if len(next_) <= MAX_NEXT else "",
        hint=login_hint(settings),
    )


@bp.post("/logout")
def logout() -> Response:
    if current_user() is None:
        abort(403, "log in first")
    check_csrf()
    sessions.revoke(db, _session_token(), _now())
    session.clear()
    flash("You are logged out.", "ok")
    return redirect(url_for("auth.login"))


def init_auth(app: Flask) -> None:
    settings: Settings = app.extensions["settings"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="cdb_session",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        # The cookie lives as long as a session can; the server decides whether it counts.
        PERMANENT_SESSION_LIFETIME=sessions.ABSOLUTE_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.jinja_env.globals.update(
        csrf_token=csrf_token, current_user=current_user, min_admin_password=MIN_ADMIN_PASSWORD
    )
    app.register_blueprint(bp)
