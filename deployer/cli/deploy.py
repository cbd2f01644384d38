"""Tasks that run the deployment checklist."""

from invoke import Collection, Exit, task

from deployer.cli.common import ENV_HELP, JSON_HELP, is_tty, load_config

DEPLOY_HELP = {
    "env": ENV_HELP,
    "json": JSON_HELP,
    "dry_run": "run only the read-only checks and print the plan (same as `inv plan`)",
    "yes": "answer yes to every confirmation (required without a TTY)",
    "no_wait": "do not wait for the environment to become Ready",
}


def require_for_deploy(loaded) -> None:
    """The LMS settings a deployed Sifu needs, refused (exit 2) before any AWS call; `inv render` and a local
    run do without them."""
    from deployer.config import DEPLOY_REQUIRED, ConfigError, require

    try:
        require(loaded, list(DEPLOY_REQUIRED), "deploy (Sifu logs students in through the LMS)")
    except ConfigError as exc:
        raise Exit(str(exc), code=2) from None


def _run(env, json, dry_run, yes=False, no_wait=False):
    import json as jsonlib
    import sys

    from deployer import checklist, steps, ui
    from deployer.checklist.context import Context

    loaded = load_config(env)
    if not dry_run:
        require_for_deploy(loaded)
    for path in ("edx.oauth2_client_secret", "rds.password"):
        ui.register_secret(loaded.settings.get(path).get_secret_value())
    ctx = Context(loaded=loaded, dry_run=dry_run, assume_yes=yes, interactive=is_tty() and not json, wait=not no_wait)
    if not json:
        ui.say(f"{'plan' if dry_run else 'deploy'}: {loaded.settings.eb.application}/{loaded.settings.eb.environment} "
               f"in {loaded.settings.eb.region}" + (f" (env {loaded.env_name})" if loaded.env_name else ""))
    report = steps.run(checklist.deploy_steps(), ctx, quiet=json)
    if json:
        print(jsonlib.dumps(report.as_json(), indent=2))
    else:
        c = report.counters
        ui.say(f"{report.summary()} · AWS calls: {c.aws_read} read, {c.aws_mutate} mutate · "
               f"pushed {c.bytes_pushed} bytes · {report.elapsed:.2f}s")
    if report.failed or (not dry_run and report.pending):
        sys.exit(1)


@task(help=DEPLOY_HELP)
def deploy(c, env=None, json=False, dry_run=False, yes=False, no_wait=False):
    """Run the 14-step deployment checklist: build, push, create or update, wait, converge, smoke-check.

    Each step checks first and changes only what differs, so a re-run after an interruption
    converges, and a run with nothing changed makes no AWS changes and says "no changes".
    """
    _run(env, json, dry_run, yes, no_wait)


@task(help={"env": ENV_HELP, "json": JSON_HELP})
def plan(c, env=None, json=False):
    """Show what `inv deploy` would change, running only read-only checks (= deploy --dry-run)."""
    _run(env, json, dry_run=True)


ns = Collection(deploy, plan)
