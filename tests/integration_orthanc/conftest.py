"""The Orthanc fixture: a real DICOMweb server for the PACS tests, or a skip saying why there is none."""

from __future__ import annotations

import pytest

from tests.integration_orthanc.orthanc import OrthancUnavailable, TemporaryOrthanc


@pytest.fixture(scope="session")
def orthanc_server():
    try:
        server = TemporaryOrthanc().start()
    except OrthancUnavailable as error:
        pytest.skip(str(error))
    yield server
    server.stop()


@pytest.fixture
def orthanc(orthanc_server):
    """The session's Orthanc, empty at the start of each test."""
    orthanc_server.clear()
    yield orthanc_server
    orthanc_server.clear()
