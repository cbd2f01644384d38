"""AWS checklist steps against the emulated AWS: calls (read/mutate) and the tool's own time.

Runs the AWS steps (credentials, registry, instance role, login, EFS, SSM secrets) as a plan on a fresh
account, a first deploy, a no-op deploy and a config-only deploy (ecr.keep_images changed), then an
Elastic Beanstalk create + wait. Baseline: the same number of bare boto3 read calls in the same run, which
is what the steps would cost with no logic at all.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.record import record  # noqa: E402


def main() -> None:
    from deployer import config, steps
    from deployer.aws import Aws
    from deployer.aws import eb as eb_api
    from deployer.aws import s3 as s3_api
    from deployer.checklist import registry, storage
    from deployer.checklist.context import Context
    from sandbox.server import MotoServer

    with tempfile.TemporaryDirectory() as tmp, MotoServer(log_path=Path(tmp) / "moto.log") as server:
        os.environ.update(server.env())
        os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        Path(tmp, "overrides.yml").write_text("{}\n")

        def load(**env: str):
            return config.load(environ={"DEPLOY__EB__KEY_NAME": "sifu-ops", "EDX_OAUTH2_CLIENT_SECRET": "x" * 32,
                                        **env}, overrides_file=Path(tmp, "overrides.yml"),
                               answers_file=Path(tmp, "answers.yml"))

        def run(dry_run: bool, **env: str) -> steps.RunReport:
            aws_steps = [registry.Credentials(), registry.RegistryStatus(), registry.RegistryAccess(),
                         registry.RegistryLogin(), storage.EfsStorage(), storage.ManagedDatabase(), storage.Secrets()]
            return steps.run(aws_steps, Context(loaded=load(**env), dry_run=dry_run), quiet=True)

        server.reset()
        server.client("ec2").create_key_pair(KeyName="sifu-ops")
        rows = []
        for label, dry_run, env in [("plan, fresh account", True, {}), ("first deploy", False, {}),
                                    ("no-op deploy", False, {}),
                                    ("config-only deploy (keep_images 10 -> 5)", False,
                                     {"DEPLOY__ECR__KEEP_IMAGES": "5"})]:
            report = run(dry_run, **env)
            assert report.failed is None, report.summary()
            c = report.counters
            rows.append(f"- {label}: {c.aws_read} read / {c.aws_mutate} mutate calls "
                        f"({', '.join(c.mutating_calls) or 'none'}); {report.elapsed:.2f} s; {report.summary()}")
            if label == "no-op deploy":
                noop_time, baseline_reads = report.elapsed, c.aws_read

        sts = server.client("sts")
        start = time.perf_counter()
        for _ in range(baseline_reads):
            sts.get_caller_identity()
        baseline = time.perf_counter() - start
        rows.append(f"- baseline: {baseline_reads} bare boto3 reads took {baseline:.2f} s "
                    f"(no-op deploy / baseline = {noop_time / baseline:.2f})")

        ctx = Aws(region="us-east-1")
        eb = ctx.client("elasticbeanstalk")
        bucket = eb_api.create_storage_location(eb)
        s3_api.upload_bundle(ctx.client("s3"), bucket, "sifu/v1.zip", b"PK bundle")
        eb_api.create_application(eb, "sifu")
        eb_api.create_application_version(eb, "sifu", "v1", bucket, "sifu/v1.zip")
        started = time.perf_counter()
        eb_api.create_environment(eb, "sifu", "sifu-prod", eb_api.docker_platform_arn(eb), "v1", {})
        before = ctx.counter.as_dict()
        events: list[str] = []
        result = eb_api.wait_for_environment(eb, "sifu-prod", datetime(2000, 1, 1, tzinfo=UTC),
                                             lambda e: events.append(e["Message"]), sleep=lambda s: None)
        after = ctx.counter.as_dict()
        rows.append(f"- EB create + wait (emulated, 1 poll per stage, sleeps skipped): {result.polls} polls, "
                    f"{after['read'] - before['read']} reads, {len(events)} events streamed, "
                    f"{time.perf_counter() - started:.2f} s")
    record("AWS checklist steps on the emulated AWS", rows)


if __name__ == "__main__":
    main()
