"""What the container's programs import before they answer: every module imported at start costs CPU on the
2 cores that Sifu, Jupyter and the kernel broker share at that moment (bench/RESULTS.md, "Start-up profile").

Each check imports a program's start-up modules in a fresh interpreter, as the program does, and lists which
of the named modules got loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def test_sifus_master_does_not_import_the_sqlalchemy_orm():
    # `python -m sifu` imports these (with workers, in gunicorn's master); sifu/db.py's tables are Core tables.
    assert loaded_after("import sifu.__main__, sifu.workers, sifu.app", ("sqlalchemy", "sqlalchemy.orm")) == ["sqlalchemy"]


def test_with_one_worker_sifu_does_not_import_gunicorn():
    # The default: uvicorn in Sifu's own process (sifu/serving.py); gunicorn only supervises forked workers.
    statement = "import sifu.__main__, sifu.serving, sifu.app, uvicorn"
    assert loaded_after(statement, ("gunicorn", "uvicorn_worker", "sifu.workers")) == []


@pytest.mark.parametrize("module", ["sifu.kernel_broker", "sifu.launch", "sifu.confine", "sifu.supervise"])
def test_the_other_programs_import_neither_sqlalchemy_nor_fastapi(module):
    assert loaded_after(f"import {module}", ("sqlalchemy", "fastapi", "pydantic")) == []


def test_the_kernel_broker_imports_its_http_client_at_the_first_kernel_not_at_start():
    # It is not needed before a student's first kernel, and Sifu and Jupyter start on the same cores.
    assert loaded_after("import sifu.kernel_broker", ("urllib.request", "http.client")) == []


@pytest.mark.parametrize("options", ["sifu.serving import UVICORN_OPTIONS as options",
                                     "sifu.workers import SifuWorker; options = SifuWorker.CONFIG_KWARGS"])
def test_sifu_loads_no_websocket_protocol(options):
    # What uvicorn loads at start (its Config.load with Sifu's settings, one process or a worker): Sifu has no
    # websocket route.
    statement = (f"from uvicorn.config import Config\nfrom {options}\n"
                 "Config(lambda: (lambda scope, receive, send: None), **options).load()")
    assert loaded_after(statement, ("websockets", "wsproto")) == []
