"""GET /metrics: Prometheus text from prometheus_client, for allowed addresses or an admin's token.

The route is PUBLIC in the access table (a scraper has no session) and checks here instead: the
client address (through ProxyFix when security.proxy_hops is set) against monitoring.metrics_allowed,
else a bearer token of an admin; anything else gets 403."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webapp.errors import Problem
from webapp.monitoring.metrics import scrape_registry
from webapp.services import services

bp = Blueprint("monitoring", __name__)


def address_allowed(address: str | None, allowed: tuple[str, ...]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket is 127.0.0.1
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _admin_token() -> bool:
    from webapp.auth.tokens import token_user

    user = token_user()
    return user is not None and user.role == "admin"


@bp.get("/metrics")
def metrics():
    if not (address_allowed(request.remote_addr, services().settings.monitoring.metrics_allowed) or _admin_token()):
        raise Problem(
            "Metrics are served to the configured addresses (monitoring.metrics_allowed) or an admin token.", 403
        )
    body = generate_latest(scrape_registry(current_app._get_current_object()))
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)
