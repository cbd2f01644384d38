# remote_bed comes from tests/integration/conftest.py (one bed per session, shared with the deploy tests).
