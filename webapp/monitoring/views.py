"""Monitoring pages and GET /metrics. The trust meter (trust.py), labelling activity (activity.py) and
drift (drift.py) pages; and Prometheus text from prometheus_client, for allowed addresses or an admin's
token.

/metrics is PUBLIC in the access table (a scraper has no session) and checks here instead: the
client address (through ProxyFix when security.proxy_hops is set) against monitoring.metrics_allowed,
else a bearer token of an admin; anything else gets 403."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, current_app, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webapp.errors import Problem
from webapp.monitoring import activity, drift, trust
from webapp.monitoring.metrics import scrape_registry
from webapp.services import services

bp = Blueprint("monitoring", __name__, template_folder="templates")


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


# --- the trust meter: where model and doctors agree, per class and site ---------------------------


def requested_version() -> int | None:
    """?version=N keeps one model version's predictions; absent or empty means every version."""
    raw = request.args.get("version", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise Problem("version must be a model version number, e.g. ?version=3.")
    return int(raw)


def current_report() -> trust.TrustReport:
    found = services()
    return trust.report(found.settings.trust, found.class_names, requested_version())


@bp.get("/trust")
def trust_page():
    return render_template("monitoring/trust.html", report=current_report())


# --- labelling activity (engineers) -----------------------------------------------------------------


@bp.get("/activity")
def activity_page():
    raw = request.args.get("days", "").strip()
    days = services().settings.monitoring.activity_days
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= 366:
            raise Problem("days must be a whole number from 1 to 366, e.g. ?days=30.")
        days = int(raw)
    return render_template("monitoring/activity.html", activity=activity.activity(days))


# --- drift: each site, age band and sex against the champion's training data ------------------------


def histogram_points(shares: list[float], width: int = 160, height: int = 36) -> str:
    """SVG polyline points of a histogram's shares, scaled so the tallest bin touches the top."""
    if not shares:
        return ""
    top = max(shares) or 1.0
    step = width / max(1, len(shares) - 1)
    return " ".join(f"{i * step:.1f},{height - share / top * (height - 2):.1f}" for i, share in enumerate(shares))


@bp.get("/drift")
def drift_page():
    found = drift.report()
    return render_template("monitoring/drift.html", report=found, points=histogram_points, dimensions=drift.DIMENSIONS)
