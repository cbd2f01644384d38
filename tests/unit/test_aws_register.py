"""Every AWS behaviour the emulator or the deploy cites by id is a row of docs/aws-behaviour.md, with a source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "docs" / "aws-behaviour.md"
ROW_ID = re.compile(r"^\| `([A-Z0-9]+(?:-[A-Z0-9]+)+)` \|", re.M)
CITED_ID = re.compile(r"\b((?:EB|ECR|IAM|EFS|AL2023|ALB|ASG|DOCKER|DOCKERRUN|SSM|RDS|S3|EC2)-[A-Z0-9]+(?:-[A-Z0-9]+)*)\b")


def register_rows() -> dict[str, str]:
    text = REGISTER.read_text()
    return {m.group(1): text[m.start():text.find("\n", m.start())] for m in ROW_ID.finditer(text)}


def test_every_cited_behaviour_is_a_row_of_the_register():
    rows = register_rows()
    cited = {}
    for folder in ("sandbox", "deployer"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".md", ".j2") and path.is_file():
                for found in CITED_ID.findall(path.read_text()):
                    cited.setdefault(found, path.relative_to(ROOT).as_posix())
    missing = {name: where for name, where in cited.items() if name not in rows}
    assert not missing, f"cited but not in {REGISTER.name}: {missing}"


def test_every_row_names_a_source_or_says_no_source_settles_it():
    unsourced = [name for name, row in register_rows().items() if "https://" not in row and "UNSETTLED" not in row]
    assert not unsourced, f"rows without a source URL or an UNSETTLED mark: {unsourced}"
