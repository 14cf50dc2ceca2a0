"""Security headers on every response of the app, and which proxy to believe.

The admin panel is built for a strict Content-Security-Policy: its CSS and its one script
(app/web/static/) come from the app itself, and no page has an inline <script>, event
handler or style= attribute. Admin pages are never stored by the browser or a proxy.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATIC_ENDPOINTS = ("static", "admin.static")


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/admin") and request.endpoint not in STATIC_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_security(app: Flask) -> None:
    app.after_request(add_security_headers)
    proxies = app.extensions["settings"].trusted_proxies
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
