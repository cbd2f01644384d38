"""Tasks that show the configuration."""

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, JSON_HELP, load_config


@task(help={"env": ENV_HELP, "json": JSON_HELP})
def config(c, env=None, json=False):
    """Show the effective configuration, where each value came from, secrets redacted.

    Environment variables read: EDX_HOSTNAME, EDX_OAUTH2_CLIENT_ID, EDX_OAUTH2_CLIENT_SECRET,
    EDX_OAUTH2_CLIENT_REDIRECT_URI, EDX_OAUTH2_FORCE_SSL, EFS_ID, RDS_DB_NAME, RDS_PORT,
    RDS_USERNAME, RDS_PASSWORD, RDS_HOSTNAME, AWS_PROFILE, OVERRIDES (path of the overrides file),
    and DEPLOY__<SECTION>__<KEY> for any other setting (DEPLOY__EB__INSTANCE_TYPE=t3.large).
    Changes nothing; safe to re-run.
    """
    loaded = load_config(env)
    rows = loaded.rows()
    if json:
        import json as jsonlib

        print(jsonlib.dumps({"env": loaded.env_name, "settings": [{"key": k, "value": v, "source": s} for k, v, s in rows]}, indent=2))
        return
    from deployer import ui

    ui.table(["setting", "value", "from"], rows, title=f"configuration{f' ({loaded.env_name})' if loaded.env_name else ''}")


ns = Collection(config)
