"""The dashboard with more model versions costs no more queries, to the app's database or to the
MLflow registry, and a view of unchanged data draws no chart; a change shows on the next view."""

import base64
import re

from matplotlib.figure import Figure

from tests.conftest import _register_tiny, login, user
from tests.statements import counted
from webapp.approvals import decisions


def _view(app, client) -> tuple[str, int, int]:
    """The page, and the statements it sent to the app's database and to MLflow's."""
    with counted() as statements:
        response = client.get("/dashboard")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    database = statements.to(app.config["SQLALCHEMY_DATABASE_URI"])
    registry = statements.to(app.config["MLFLOW_TRACKING_URI"])
    return page, len(database), len(registry)


def _charts(page: str) -> list[str]:
    return [base64.b64decode(m).decode() for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]


def test_six_gated_versions_cost_the_same_queries_as_three(app, gated):
    client = app.test_client()
    login(client, "engineer")
    _view(app, client)  # the first view draws the charts
    page, database, registry = _view(app, client)
    assert 'data-version="3"' in page and 'data-version="4"' not in page
    for version in (3, 4, 5, 6):
        if version > 3:
            assert _register_tiny(gated, seed=version) == version
        gated.set_alias("candidate", version)
        decisions.on_candidate(version)
    _view(app, client)
    page, more_database, more_registry = _view(app, client)
    assert all(f'data-version="{v}"' in page for v in (4, 5, 6)) and "not measured on the gold set yet" not in page
    assert database > 0 and registry > 0  # both are counted
    assert (more_database, more_registry) == (database, registry)


def test_a_view_of_unchanged_data_draws_no_chart_and_a_promotion_shows_at_once(app, gated, monkeypatch):
    drawn = []
    draw = Figure.savefig

    def counting(figure, *args, **kwargs):
        drawn.append(figure)
        return draw(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", counting)
    client = app.test_client()
    login(client, "engineer")
    before = _charts(_view(app, client)[0])
    drawn.clear()
    assert _charts(_view(app, client)[0]) == before and drawn == []
    decisions.decide(2, user("engineer"), approve=True, reason="better on gold", override=True)
    decisions.rollback(user("engineer"), "misses on ward 3")
    after = _charts(_view(app, client)[0])
    assert len(after) == len(before) == 5
    assert not any("promoted" in svg for svg in before)
    assert all("promoted" in svg and "rolled back" in svg for svg in after)
