"""The EB Docker platform engine's pure parts: the manifest, Dockerrun v1, the container's command line, hook
order, the platform's nginx files, EB's failure messages, and the metadata stand-in's answers."""

from __future__ import annotations

import json

import pytest

from sandbox import metadata
from sandbox.platform_agent import (
    CONTAINER_LOGS, DOCKER, FAILED, DeploymentError, Dockerrun, Manifest, container_environment, docker_run_argv,
    failure_events, hook_failure, hosts_entries, nginx_conf, ordered_hooks, platform_nginx_files, secret_reference, upstream_conf,
)

OUR_DOCKERRUN = {
    "AWSEBDockerrunVersion": "1",
    "Image": {"Name": "127.0.0.1:5000/sifu:abc", "Update": "false"},
    "Ports": [{"ContainerPort": 3334}, {"ContainerPort": 3335}],
    "Volumes": [{"HostDirectory": "/mnt/efs", "ContainerDirectory": "/notebooks"}],
    "Logging": "/var/log/sifu",
}


def test_manifest_round_trips_through_json():
    manifest = Manifest("http://10.0.0.1:5000", "eu-west-1", "bucket", "app/v1.zip", "v1",
                        {"A": "1"}, {"S": "arn:aws:ssm:eu-west-1:123456789012:parameter/p/s"})
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_dockerrun_v1_keys_and_defaults():
    spec = Dockerrun.parse(json.dumps(OUR_DOCKERRUN))
    assert spec == Dockerrun(image="127.0.0.1:5000/sifu:abc", update=False, ports=[(3334, None), (3335, None)],
                             volumes=[("/mnt/efs", "/notebooks")], logging="/var/log/sifu")
    minimal = Dockerrun.parse(json.dumps({"AWSEBDockerrunVersion": 1, "Image": {"Name": "x"},
                                          "Ports": [{"ContainerPort": "80", "HostPort": "8080"}],
                                          "Command": "serve --port 80"}))
    assert minimal.update is True and minimal.ports == [(80, 8080)] and minimal.command == ["serve", "--port", "80"]


@pytest.mark.parametrize("text, says", [
    ("{", "not valid JSON"),
    (json.dumps({"AWSEBDockerrunVersion": "2", "Image": {"Name": "x"}}), "only AWSEBDockerrunVersion 1"),
    (json.dumps({"AWSEBDockerrunVersion": "1", "Ports": [{"ContainerPort": 1}]}), "Image.Name is required"),
    (json.dumps({"AWSEBDockerrunVersion": "1", "Image": {"Name": "x"}}), "Ports is required"),
])
def test_dockerrun_refusals_name_the_problem(text, says):
    with pytest.raises(DeploymentError, match=says):
        Dockerrun.parse(text)


def test_docker_run_passes_variables_by_name_maps_volumes_logs_and_hosts():
    spec = Dockerrun.parse(json.dumps(OUR_DOCKERRUN))
    env = container_environment({"SIFU_MODE": "x", "SHARED": "property"}, {"SECRET": "s3cr3t", "SHARED": "secret"})
    assert env == {"SIFU_MODE": "x", "SHARED": "secret", "SECRET": "s3cr3t"}
    argv = docker_run_argv(spec, sorted(env), {"fs-1.efs.us-east-1.amazonaws.com": "10.0.0.2"},
                           {"elasticbeanstalk.version-label": "v1"})
    assert argv == [DOCKER, "run", "-d", "--label", "elasticbeanstalk.version-label=v1",
                    "-e", "SECRET", "-e", "SHARED", "-e", "SIFU_MODE",
                    "-v", "/mnt/efs:/notebooks", "-v", f"{CONTAINER_LOGS}:/var/log/sifu",
                    "--add-host", "fs-1.efs.us-east-1.amazonaws.com:10.0.0.2",
                    "127.0.0.1:5000/sifu:abc"]
    assert "s3cr3t" not in " ".join(argv)  # values travel in the CLI's environment, never on a command line


def test_docker_run_publishes_only_an_explicit_host_port_and_keeps_command_and_entrypoint():
    spec = Dockerrun(image="img", ports=[(80, 8080), (81, None)], command=["a", "b"], entrypoint="/bin/sh")
    argv = docker_run_argv(spec, [], {}, {})
    assert argv == [DOCKER, "run", "-d", "-p", "8080:80", "--entrypoint", "/bin/sh", "img", "a", "b"]


def test_containers_get_the_hosts_names_but_localhost_and_its_own():
    etc = "127.0.0.1 localhost\n::1 ip6-localhost\n10.0.0.11 ip-10-0-0-11\n10.0.0.2 fs-1.efs # EFS\n10.0.0.3 db a\n"
    assert hosts_entries(etc, "ip-10-0-0-11") == {"fs-1.efs": "10.0.0.2", "db": "10.0.0.3", "a": "10.0.0.3"}


def test_hooks_run_in_lexical_order():
    assert ordered_hooks(["10-b.sh", "02-a.sh", "1-z.sh", "01-c.sh", "B.sh", "a.sh"]) == [
        "01-c.sh", "02-a.sh", "1-z.sh", "10-b.sh", "B.sh", "a.sh"]


def test_failure_events_are_ebs_and_name_the_hook():
    error = DeploymentError("RunAppDeployPreBuildHooks",
                            hook_failure(".platform/hooks/prebuild/01-x.sh", "exit status 1. Stderr:boom"))
    assert failure_events(error) == [
        "Instance deployment failed. For details, see 'eb-engine.log'.",
        "Command failed on instance. Return code: 1 Output: Command .platform/hooks/prebuild/01-x.sh failed with "
        "error exit status 1. Stderr:boom"]
    assert failure_events(error)[0] == FAILED


def test_platform_nginx_includes_conf_d_in_http_and_elasticbeanstalk_in_the_default_server():
    conf = nginx_conf()
    http = conf[conf.index("http {"):]
    server = http[http.index("server {"):]
    assert "include conf.d/*.conf;" in http[:http.index("server {")]
    assert "listen 80 default_server;" in server and "include conf.d/elasticbeanstalk/*.conf;" in server
    files = platform_nginx_files("172.17.0.2", 3334)
    assert "proxy_pass http://docker;" in files["conf.d/elasticbeanstalk/00_application.conf"]
    assert "server 172.17.0.2:3334;" in files["conf.d/elasticbeanstalk-nginx-docker-upstream.conf"]
    assert "down;" in upstream_conf(None, None)  # before any container: 502, and nginx -t still passes


def test_secret_references_by_service():
    assert secret_reference("arn:aws:ssm:us-east-1:123456789012:parameter/sifu/env/key") == ("ssm", "/sifu/env/key")
    assert secret_reference("arn:aws:ssm:us-east-1:123456789012:parameter/plain") == ("ssm", "/plain")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
    assert secret_reference(arn) == ("secretsmanager", arn)
    with pytest.raises(ValueError):
        secret_reference("arn:aws:s3:::bucket")


def _identity() -> metadata.Identity:
    return metadata.Identity("i-0abc", "eu-west-1", "10.0.0.11", role_name="sifu-ec2",
                             credentials=lambda: {"AccessKeyId": "AK", "SecretAccessKey": "SK", "SessionToken": "ST",
                                                  "Expiration": "2030-01-01T00:00:00Z"})


def test_metadata_answers_only_with_a_live_token():
    now = [100.0]
    tokens = metadata.Tokens(clock=lambda: now[0])
    identity = _identity()
    assert metadata.answer(identity, tokens, "GET", "/latest/meta-data/instance-id", {}).status == 401
    assert metadata.answer(identity, tokens, "PUT", "/latest/api/token", {}).status == 400
    assert metadata.answer(identity, tokens, "PUT", "/latest/api/token",
                           {"X-aws-ec2-metadata-token-ttl-seconds": "21601"}).status == 400
    token = metadata.answer(identity, tokens, "PUT", "/latest/api/token",
                            {"X-aws-ec2-metadata-token-ttl-seconds": "60"}).body
    headers = {"x-aws-ec2-metadata-token": token}
    assert metadata.answer(identity, tokens, "GET", "/latest/meta-data/instance-id", headers).body == "i-0abc"
    assert metadata.answer(identity, tokens, "GET", "/latest/meta-data/placement/region", headers).body == "eu-west-1"
    role = metadata.answer(identity, tokens, "GET", "/latest/meta-data/iam/security-credentials/", headers)
    assert role.body == "sifu-ec2"
    creds = json.loads(metadata.answer(identity, tokens, "GET",
                                       "/latest/meta-data/iam/security-credentials/sifu-ec2", headers).body)
    assert (creds["Code"], creds["AccessKeyId"], creds["Token"]) == ("Success", "AK", "ST")
    assert metadata.answer(identity, tokens, "GET", "/latest/meta-data/nothing", headers).status == 404
    now[0] += 61
    assert metadata.answer(identity, tokens, "GET", "/latest/meta-data/instance-id", headers).status == 401
