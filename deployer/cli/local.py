"""Tasks that run the whole stack on this machine."""

from __future__ import annotations

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, fail, load_config


@task(help={
    "mode": "auto (container when a Docker engine answers, else process), container, or process",
    "detach": "start everything and return; stop it later with `inv local-stop`",
    "lms_port": "port of devlms, the development LMS (default 8000)",
    "port_offset": "with nginx in front, the app listens on the configured ports + this (default 10000)",
    "no_nginx": "do not put nginx in front even if it is installed",
    "network": "network for image builds in container mode (e.g. host)",
    "env": ENV_HELP,
})
def local_run(c, mode="auto", detach=False, lms_port=8000, port_offset=10000, no_nginx=False, network=None, env=None):
    """Bring the whole stack up on this machine: Sifu + Jupyter, nginx in front, devlms as the LMS.

    Container mode runs the app image (built if out of date) with a local folder, .local-run/efs,
    as the notebook root, as on an instance; process mode runs the same supervisord programs from
    this venv. nginx (when installed) serves the rendered vhosts on the configured ports. Prints
    the URLs to open; sign in as a demo student (alice / alice-pass). Ctrl-C stops everything.
    Running it again while a detached run is up says so and changes nothing.
    """
    from deployer import image, localrun, ui
    from deployer.cli.image import build_log

    if mode not in ("auto", "container", "process"):
        raise fail(f"--mode must be auto, container or process, not {mode!r}")
    loaded = load_config(env)
    try:
        run = localrun.up(loaded.settings, mode, int(lms_port), int(port_offset), use_nginx=False if no_nginx else None,
                          network=network, build_progress=build_log, prompt=image.tty_prompt())
    except localrun.LocalRunError as exc:
        raise fail(str(exc)) from None
    ui.say(f"ready in {max(run.ready.values()):.1f}s ({run.started.mode} mode). Open:")
    for name, url in run.started.urls.items():
        ui.say(f"  {name:<12} {url}")
    ui.say("  sign in as   alice / alice-pass (student), instructor / instructor-pass")
    ui.say(f"  notebooks    {run.layout.efs}/ (the local stand-in for EFS)")
    if detach:
        ui.say("running in the background; stop it with `inv local-stop`")
        return
    ui.say("Ctrl-C stops everything.")
    try:
        localrun.wait_for_exit(run.started)
        ui.say("a process exited; stopping the rest (see .local-run/logs/)")
    except KeyboardInterrupt:
        ui.say("stopping...")
    finally:
        stopped = localrun.down(run.started)
        ui.say(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@task
def local_stop(c):
    """Stop a local run started with `inv local-run --detach` (only what it started, by PID).

    Safe to re-run: with nothing running it says so.
    """
    from deployer import localrun, ui

    started = localrun.load_state()
    if started is None:
        ui.say("no local run is recorded in .local-run/state.json; nothing to stop")
        return
    stopped = localrun.down(started)
    ui.say(f"stopped: {', '.join(stopped) or 'nothing was still running'}")


ns = Collection(local_run, local_stop)
