"""The route -> roles table: who may call each endpoint, enforced for every request in one place.
It is the only access check on routes: views carry no role decorators, and read the user this check
set (`current_user` for pages, `g.api_user` for the API).

Every endpoint the app registers needs an entry in ACCESS, keyed by its endpoint name
("blueprint.function", as `url_for` spells it). A value is one of

- PUBLIC: anyone, logged in or not (log-in page, health check, static files);
- SIGNED_IN: any logged-in user, whatever the role;
- LABELERS: the roles in `security.label_roles` (config.yaml); admins only if listed there;
- ADJUDICATORS: users who may settle disputed gold reads (the flag, or admin);
- LABELERS_OR_ADJUDICATORS: either (the gold-reads page: blind reads for labelers, the disputed
  images for adjudicators);
- a tuple of roles, e.g. ("engineer",): those roles, and admins, who hold every role.

`enforce` runs before every request. Pages authenticate with the session cookie (anonymous users
are sent to the log-in page); endpoints of the `api` blueprint only with a bearer token (401 without
one), never the cookie, since the API is exempt from CSRF. A wrong role gets 403. An endpoint that is
missing from the table is refused for everyone, and tests/webapp/auth/test_access.py walks
app.url_map and fails naming it, so adding a route means adding its line here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import abort, g, request
from flask_login import current_user

from webapp.errors import Problem
from webapp.extensions import login
from webapp.models import User

log = logging.getLogger(__name__)

PUBLIC = "public"
SIGNED_IN = "signed in"
LABELERS = "labelers"
ADJUDICATORS = "adjudicators"
LABELERS_OR_ADJUDICATORS = "labelers or adjudicators"
ENGINEERS = ("engineer",)
Rule = str | tuple[str, ...]

ACCESS: dict[str, Rule] = {
    "static": PUBLIC,
    # auth
    "auth.login_page": PUBLIC,
    "auth.health": PUBLIC,
    "auth.logout": SIGNED_IN,
    "auth.profile": SIGNED_IN,  # each user edits their own name and job title (no other user's)
    # review: the queue and labels are the labelers'; a prediction page anyone may read
    "review.home": SIGNED_IN,
    "review.next_image": LABELERS,
    "review.submit": LABELERS,
    "review.skip": LABELERS,
    "review.prediction_page": SIGNED_IN,
    # a study beside another of the same patient (404 for any other patient's film): read like a prediction page
    "priors.compare": SIGNED_IN,
    # upload and the served model's images
    "upload.page": SIGNED_IN,
    "upload.receive": SIGNED_IN,
    "inference.image_file": SIGNED_IN,
    "inference.thumbnail": SIGNED_IN,
    "inference.heatmap": SIGNED_IN,
    # gold set: engineers pick, labelers read blind, adjudicators settle (from the gold page or the reads page)
    "gold.page": ENGINEERS,
    "gold.mark": ENGINEERS,
    "gold.read": LABELERS_OR_ADJUDICATORS,
    "gold.record_read": LABELERS,
    "gold.adjudicate": ADJUDICATORS,
    # training, approvals, history, classes: the engineers'
    "training.page": ENGINEERS,
    "training.status": ENGINEERS,
    "training.train_now": ENGINEERS,
    "training.strategy": ENGINEERS,
    "training.run_page": ENGINEERS,
    "training.curves_svg": ENGINEERS,
    "training.compare": ENGINEERS,
    "approvals.page": ENGINEERS,
    "approvals.decide": ENGINEERS,
    "approvals.rollback": ENGINEERS,
    "approvals.rerun_gate": ENGINEERS,
    "approvals.history": ENGINEERS,
    "dashboard.page": ENGINEERS,
    "dashboard.compare": ENGINEERS,
    "classes.page": ENGINEERS,
    "classes.add": ENGINEERS,
    "classes.rename": ENGINEERS,
    # assistant
    "assistant.ask": SIGNED_IN,
    "assistant.thread": SIGNED_IN,
    # the API's contract and its documentation page: no secrets, so anyone may read them
    "api-docs.openapi_json": PUBLIC,
    "api_docs.page": PUBLIC,
    # trust meter (doctors and engineers: aggregates only); labelling activity (engineers: per doctor)
    "monitoring.trust_page": SIGNED_IN,
    "monitoring.activity_page": ENGINEERS,
    "monitoring.drift_page": ENGINEERS,  # drift by site, age band and sex
    # Prometheus scrapes have no session: webapp/monitoring/views.py checks the address or an admin token
    "monitoring.metrics": PUBLIC,
    # study reports: anyone signed in reads them; doctors (labelers) amend the final label
    "reports.study_page": SIGNED_IN,
    "reports.study_pdf": SIGNED_IN,
    "reports.revision_pdf": SIGNED_IN,
    "reports.amend": LABELERS,
    # REST API (bearer tokens)
    "api.upload_image": SIGNED_IN,
    "api.trust_meter": SIGNED_IN,
    "api.monitoring_drift": ENGINEERS,
    "api.get_image": SIGNED_IN,
    "api.review_next": LABELERS,
    "api.add_label": LABELERS,
    "api.skip_image": LABELERS,
    "api.put_clinical": LABELERS,
    # clinical data: doctors add it to a study; engineers decide on the image + clinical data models
    "clinical.update": LABELERS,
    "clinical.models_page": ENGINEERS,
    "clinical.decide": ENGINEERS,
    "api.ask": SIGNED_IN,
    "api.list_models": ENGINEERS,
    "api.model_history": ENGINEERS,
    "api.approve": ENGINEERS,
    "api.reject": ENGINEERS,
    "api.rerun_gate": ENGINEERS,
    "api.gate_report": ENGINEERS,
    "api.rollback": ENGINEERS,
    "api.model_metrics": ENGINEERS,
    "api.study_report_pdf": SIGNED_IN,
    "api.study_report": SIGNED_IN,
    "api.image_fhir": SIGNED_IN,
}

# where a user lands after logging in: the first of these they may open
LANDING = ("review.next_image", "approvals.page", "upload.page")


def is_api(endpoint: str) -> bool:
    return endpoint.startswith("api.")


def label_roles() -> tuple[str, ...]:
    from webapp.services import services

    return tuple(services().settings.security.label_roles)


def may_label(user: User) -> bool:
    """Review labels and gold reads: exact membership of security.label_roles, since User.has_role
    lets admins hold every role and labels need a listed one."""
    return user.role in label_roles()


def allows(rule: Rule, user: User | None) -> bool:
    """Whether `user` (None: anonymous) may call an endpoint with this rule."""
    if rule == PUBLIC:
        return True
    if user is None:
        return False
    checks: dict[str, Callable[[User], bool]] = {
        SIGNED_IN: lambda _: True,
        LABELERS: may_label,
        ADJUDICATORS: lambda who: who.adjudicates,
        LABELERS_OR_ADJUDICATORS: lambda who: may_label(who) or who.adjudicates,
    }
    if isinstance(rule, str):
        return checks[rule](user)
    return user.has_role(*rule)


def may(endpoint: str) -> bool:
    """For templates: whether the current user may open `endpoint` (links they could not follow are hidden)."""
    rule = ACCESS.get(endpoint)
    user = current_user if current_user.is_authenticated else None
    return rule is not None and allows(rule, user)


def landing(user: User) -> str:
    return next((endpoint for endpoint in LANDING if allows(ACCESS[endpoint], user)), "upload.page")


def enforce():
    """before_request: the table's verdict for this request's endpoint."""
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: the 404 or 405 follows
        return None
    rule = ACCESS.get(endpoint)
    if rule is None:
        log.error("endpoint %s has no entry in webapp/auth/access.py ACCESS; refused", endpoint)
        raise Problem(f"The route {endpoint} has no access rule yet, so nobody may use it.", 403)
    if rule == PUBLIC:
        return None
    if is_api(endpoint):
        from webapp.auth.tokens import token_user

        user = token_user()
        if user is None:
            raise Problem("A valid bearer token is required.", 401)
        g.api_user = user
        if not allows(rule, user):
            raise Problem("Your role does not allow this.", 403)
        return None
    if not current_user.is_authenticated:
        return login.unauthorized()
    if not allows(rule, current_user):
        abort(403)
    return None
