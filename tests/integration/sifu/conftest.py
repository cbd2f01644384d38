"""Real Sifu, devlms, Jupyter and PostgreSQL processes (tests/support/sifu_stack.py)."""

from tests.support.sifu_stack import postgres_server, sifu_stack, sifu_stack_postgres  # noqa: F401
