"""The instance role's inline policy and the preflight's permission list (pure builders; IAM-INSTANCE-NEEDS,
IAM-ENVSECRETS-KMS, IAM-SIMULATE)."""

from __future__ import annotations

import json

from deployer import config
from deployer.aws import iam
from deployer.checklist import preflight


def test_instance_policy_grants_our_bucket_statistics_and_parameter_path_only():
    text = iam.instance_policy("us-west-1", "111122223333", "app", "env", "/proj/env")
    assert text == iam.instance_policy("us-west-1", "111122223333", "app", "env", "/proj/env/")  # compared as text
    statements = {s["Sid"]: s for s in json.loads(text)["Statement"]}
    assert statements["SourceBundleAndLogs"] == {
        "Sid": "SourceBundleAndLogs", "Effect": "Allow", "Action": ["s3:Get*", "s3:List*", "s3:PutObject"],
        "Resource": ["arn:aws:s3:::elasticbeanstalk-us-west-1-111122223333",
                     "arn:aws:s3:::elasticbeanstalk-us-west-1-111122223333/*"]}
    assert statements["EnhancedHealth"]["Resource"] == [
        "arn:aws:elasticbeanstalk:us-west-1:111122223333:application/app",
        "arn:aws:elasticbeanstalk:us-west-1:111122223333:environment/app/env"]
    assert statements["EnvironmentSecrets"]["Action"] == ["ssm:GetParameter", "ssm:GetParameters"]
    assert statements["EnvironmentSecrets"]["Resource"] == ["arn:aws:ssm:us-west-1:111122223333:parameter/proj/env/*"]
    assert set(statements) == {"SourceBundleAndLogs", "EnhancedHealth", "EnvironmentSecrets"}
    key = "arn:aws:kms:us-west-1:111122223333:key/1234"
    with_key = {s["Sid"]: s for s in json.loads(iam.instance_policy("us-west-1", "1", "a", "e", "/p/e", key))["Statement"]}
    assert with_key["SecretsKey"] == {"Sid": "SecretsKey", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key]}


def test_preflight_asks_for_what_the_configured_steps_use(tmp_path):
    (tmp_path / "o.yml").write_text("{}\n")
    s = config.load(environ={}, overrides_file=tmp_path / "o.yml", answers_file=tmp_path / "a.yml").settings
    needed = {(action, resource) for _, resource, actions in preflight.needed_permissions(s, "1") for action in actions}
    assert ("iam:PassRole", "arn:aws:iam::1:role/aws-elasticbeanstalk-ec2-role") in needed
    assert ("s3:PutObject", "arn:aws:s3:::elasticbeanstalk-us-east-1-1/*") in needed
    assert ("elasticfilesystem:CreateFileSystem", "*") in needed
    assert not any(action.startswith("rds:") for action, _ in needed)  # rds.mode none
