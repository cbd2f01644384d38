"""The whole `inv deploy` checklist on the emulated AWS: first, no-op and config-only deploys.

For each: AWS calls (read/mutate), bytes pushed, wall time, and the tool's own time (wall time minus the
seconds spent waiting for Elastic Beanstalk, ctx.counters.waited_seconds). The emulated EB advances one
lifecycle stage per describe call and the poll interval is 0.2 s, so waits are short but real.

Not included, said plainly: steps 14e/14f (converge over SSH and the smoke check need instances and a load
balancer; bench/converge.py measures converge on 1-16 SSH hosts) and the image steps 5-7, 10, 11 (the image
URI is given as a fact, so bytes pushed is 0 here; bench/image_start.py measures builds).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.record import record  # noqa: E402


def main() -> None:
    from deployer import checklist, config, steps
    from deployer.checklist import beanstalk, bundle
    from deployer.checklist.context import Context, Facts
    from sandbox.server import MotoServer

    from deployer import REPO_ROOT

    (REPO_ROOT / "build").mkdir(exist_ok=True)
    # RenderBundle reports paths relative to the repository: the scratch directory lives in build/.
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "build", prefix="bench-deploy-") as tmp, MotoServer(log_path=Path(tmp) / "moto.log") as server:
        os.environ.update(server.env())
        os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        Path(tmp, "overrides.yml").write_text("eb:\n  poll_interval: 0.2\n")
        bundle.BUNDLE_DIR = Path(tmp, "bundle")
        bundle.RENDER_DIR = Path(tmp, "render")
        beanstalk.EB_CLI_CONFIG_PATH = Path(tmp, ".elasticbeanstalk", "config.yml")
        config.answers.ANSWERS_FILE = Path(tmp, "answers.yml")
        server.reset()
        server.client("ec2").create_key_pair(KeyName="sifu-ops")
        measured = [s for s in checklist.deploy_steps() if str(s.number) not in ("5", "6", "7", "10", "11", "14e", "14f")]

        def run(dry_run: bool, **env: str) -> steps.RunReport:
            loaded = config.load(environ={"DEPLOY__EB__KEY_NAME": "sifu-ops", "EDX_OAUTH2_CLIENT_SECRET": "x" * 32,
                                          **env}, overrides_file=Path(tmp, "overrides.yml"))
            ctx = Context(loaded=loaded, dry_run=dry_run, assume_yes=True, emit=lambda line: None,
                          facts=Facts(image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/sifu-notebooks:b1"))
            return steps.run(measured, ctx, quiet=True)

        rows = ["| run | AWS read | AWS mutate | bytes pushed | wall (s) | waited (s) | own time (s) | result |",
                "|---|---:|---:|---:|---:|---:|---:|---|"]
        for label, dry_run, env in [("plan, fresh account", True, {}), ("first deploy", False, {}),
                                    ("no-op deploy", False, {}),
                                    ("config-only deploy (instance type)", False,
                                     {"DEPLOY__EB__INSTANCE_TYPE": "t3.large"})]:
            report = run(dry_run, **env)
            assert report.failed is None, report.summary()
            c = report.counters
            rows.append(f"| {label} | {c.aws_read} | {c.aws_mutate} | {c.bytes_pushed} | {report.elapsed:.2f} | "
                        f"{c.waited_seconds:.2f} | {report.elapsed - c.waited_seconds:.2f} | {report.summary()} |")
        rows.append("")
        rows.append("Steps 1-4, 8, 9, 12, 13, 14a-14d (converge/smoke and the image steps excluded; see the script's "
                    "docstring). Mutating calls of the config-only deploy: "
                    + ", ".join(report.counters.mutating_calls))
    record("inv deploy checklist on the emulated AWS (bench/deploy.py)", rows)


if __name__ == "__main__":
    main()
