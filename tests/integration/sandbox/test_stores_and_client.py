"""The stand-ins behind EFS and RDS (sandbox/stores.py) and the client namespace (sandbox/client.py), with real
processes in namespaces named from SIFU_TESTBED_PREFIX (tests/support/lb_bed.py).

The RDS test creates the DB instance in moto (in process), reads what CreateDBInstance was given from moto's
backend, starts PostgreSQL with it, and connects from the client namespace with exactly what
DescribeDBInstances reports: the endpoint's address (resolved by the client's hosts file) and port.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import tempfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.rds.models import rds_backends

from sandbox.client import ClientNamespace
from sandbox.registry import start_registry, stop_registry
from sandbox.server import MotoServer
from sandbox.stores import Database, DatabaseRequest, NfsExport
from tests.support import lb_bed

pytestmark = pytest.mark.integration

CNAME = "sifu-stores-test.us-east-1.elasticbeanstalk.com"


@pytest.fixture(scope="module")
def bed():
    bed = lb_bed.LbBed().up()
    client = ClientNamespace(bed.add_namespace("cl", lb_bed.address(20)), {CNAME: lb_bed.address(10)})
    client.write_hosts()
    try:
        yield bed, client
    finally:
        client.remove_hosts()
        bed.down()


@pytest.fixture
def rds_instance(monkeypatch):
    """A PostgreSQL DB instance in moto: (what moto's backend holds, DescribeDBInstances' Endpoint)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    password = secrets.token_urlsafe(18)
    with mock_aws():
        rds = boto3.client("rds", region_name="us-east-1")
        rds.create_db_instance(DBInstanceIdentifier="sifu-db", Engine="postgres", MasterUsername="sifuadmin",
                               MasterUserPassword=password, DBName="sifu", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, Port=5433)
        endpoint = rds.describe_db_instances(DBInstanceIdentifier="sifu-db")["DBInstances"][0]["Endpoint"]
        request = DatabaseRequest.from_moto(rds_backends["123456789012"]["us-east-1"].databases["sifu-db"])
    return request, endpoint


def psql(client: ClientNamespace, host: str, port: int, user: str, password: str, dbname: str):
    return client.run(["psql", "-Atc", "select current_user, current_database()",
                       f"host={host} port={port} user={user} dbname={dbname} connect_timeout=10"],
                      env={**os.environ, "PGPASSWORD": password})


def test_postgres_accepts_what_rds_reports_from_a_namespace_and_refuses_a_wrong_password(bed, rds_instance, tmp_path):
    bed, client = bed
    request, endpoint = rds_instance
    assert request.master_username == "sifuadmin" and request.db_name == "sifu" and request.port == 5433
    at = lb_bed.address(30)
    database = Database(tmp_path / "rds", bed.add_namespace("db", at), at, request).start()
    try:
        client.add_names({endpoint["Address"]: at})
        ok = psql(client, endpoint["Address"], endpoint["Port"], "sifuadmin", request.master_password, "sifu")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "sifuadmin|sifu"
        wrong = psql(client, endpoint["Address"], endpoint["Port"], "sifuadmin", request.master_password + "x", "sifu")
        assert wrong.returncode != 0
        assert "password authentication failed" in wrong.stderr
        unknown = psql(client, endpoint["Address"], endpoint["Port"], "postgres", request.master_password, "sifu")
        assert unknown.returncode != 0
    finally:
        database.remove()
    assert database.process is None and not (tmp_path / "rds").exists() and not database.cluster.exists()
    gone = psql(client, endpoint["Address"], endpoint["Port"], "sifuadmin", request.master_password, "sifu")
    assert gone.returncode != 0  # nothing listens any more


def test_rds_credentials_that_rds_would_refuse_are_refused():
    for bad in ({"master_username": "postgres"}, {"master_username": "1admin"}, {"master_username": "a" * 17},
                {"master_password": "short"}, {"master_password": 'quote"inside'}, {"master_password": "new\nline!"},
                {"db_name": "sifu; drop"}, {"port": 80}):
        with pytest.raises(ValueError):
            DatabaseRequest(**{"master_username": "sifuadmin", "master_password": "long-enough-1", **bad})


def test_the_efs_export_starts_root_owned_0755_and_answers_from_a_namespace(bed, tmp_path):
    bed, client = bed
    at = lb_bed.address(31)
    export = NfsExport(tmp_path / "efs", bed.add_namespace("efs", at), at).start()
    try:
        mode = export.export.stat()
        assert (mode.st_uid, mode.st_gid, stat.S_IMODE(mode.st_mode)) == (0, 0, 0o755)
        assert export.answers(from_namespace=client.namespace)
        listing = client.run(["nfs-ls", f"nfs://{at}/?version=4"])
        assert listing.returncode == 0, listing.stderr
    finally:
        export.remove()
    assert export.process is None and not (tmp_path / "efs").exists()


def test_the_client_namespace_resolves_the_cname_and_reaches_aws_and_the_registry_on_the_bridge(bed):
    bed, client = bed
    machine_hosts = Path("/etc/hosts").read_text()
    resolved = client.run(["getent", "hosts", CNAME])
    assert resolved.stdout.split()[:2] == [lb_bed.address(10), CNAME]
    assert subprocess.run(["getent", "hosts", CNAME], capture_output=True).returncode != 0  # only in there
    with tempfile.TemporaryDirectory(prefix="sifulb-registry-") as root, \
            MotoServer(host=lb_bed.BRIDGE_ADDRESS) as aws:
        registry = start_registry(Path(root), host=lb_bed.BRIDGE_ADDRESS)
        try:
            control = client.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                  f"{aws.endpoint}/moto-api/sandbox/control"])
            assert control.stdout == "200", control.stderr
            v2 = client.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"{registry.url}/v2/"])
            assert v2.stdout == "401", v2.stderr  # up, and asking for the ECR credentials
        finally:
            stop_registry(registry)
    assert Path("/etc/hosts").read_text() == machine_hosts
