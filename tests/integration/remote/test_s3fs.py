"""storage.kind s3: the same converge mounts a bucket with the real s3fs, against moto's S3 (the sandbox's
server, on the test bridge's address so s3fs in a test host reaches it).

On instances s3fs authenticates with the instance role (iam_role=auto) and no key is written
to disk; the unit tests check that line. Here there is no instance metadata service, so THIS
TEST ONLY gives s3fs a passwd file with moto's dummy keys, and points it at moto's endpoint
(S3Access(endpoint=..., passwd_file=...)). Everything else is the production script.
"""

import pytest

from deployer import render
from deployer.remote import executor
from deployer.remote.commands import S3Access
from sandbox.server import MotoServer
from tests.support.hosts import BRIDGE_ADDRESS, curl

pytestmark = pytest.mark.integration
BUCKET = "sifurm-notebooks"


@pytest.fixture(scope="module")
def moto_s3(remote_bed):
    with MotoServer(host=BRIDGE_ADDRESS, log_path=remote_bed.dir / "moto.log") as server:
        server.client("s3").create_bucket(Bucket=BUCKET)
        yield server


def test_s3fs_mount_through_converge(remote_bed, moto_s3):
    bed = remote_bed
    host = bed.hosts[4]
    passwd = bed.dir / "s3fs-passwd"  # test only: moto's dummy keys, since there is no instance role here
    passwd.write_text("testing:testing\n")
    passwd.chmod(0o600)
    access = S3Access(region="us-east-1", endpoint=moto_s3.endpoint, passwd_file=str(passwd))
    s, _ = bed.settings(**{"storage.kind": "s3", "storage.s3_bucket": BUCKET})
    bed.deploy_bundle(host, **{"storage.kind": "s3", "storage.s3_bucket": BUCKET})

    result = executor.converge([host.address], s, render.Facts(offline=False), access=access)
    assert result.hosts[0].ok, result.hosts[0].error
    assert host.mounted_source(bed.mount_point) == "s3fs fuse.s3fs"
    assert host.read(f"{bed.mount_point}/.sifu-volume") == f"s3://{BUCKET}\n"
    fstab_line = (f"{BUCKET} {bed.mount_point} fuse.s3fs _netdev,nofail,passwd_file={passwd},allow_other,"
                  f"url={moto_s3.endpoint},use_path_request_style 0 0")
    assert fstab_line in host.read("/etc/fstab").splitlines()
    for port in bed.ports:
        assert curl(host.address, port, "/x") == (200, f"app {host.app_address}:{port} /x\n")

    # Files written through the mount are S3 objects in the bucket.
    host.run(f"echo from-s3fs > {bed.mount_point}/notebook.ipynb && sync")
    s3 = moto_s3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert {".sifu-volume", "notebook.ipynb"} <= keys
    assert s3.get_object(Bucket=BUCKET, Key="notebook.ipynb")["Body"].read() == b"from-s3fs\n"

    again = executor.converge([host.address], s, render.Facts(offline=False), access=access)
    assert again.hosts[0].ok and again.hosts[0].changed == []
