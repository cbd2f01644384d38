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
    from deployer.docker_client import Docker, DockerError

    if mode not in ("auto", "container", "process"):
        raise fail(f"--mode must be auto, container or process, not {mode!r}")
    previous = localrun.load_state()
    if previous and any(localrun.is_ours(previous, name) for name in previous.pids):
        raise fail("a local run is already up (see .local-run/state.json); stop it with `inv local-stop` first")
    if not localrun.have_devlms():
        raise fail("devlms/ (the development LMS) is not in this checkout; local-run needs it")
    loaded = load_config(env)
    public = localrun.local_settings(loaded.settings, int(lms_port))
    docker = Docker()
    if mode == "auto":
        mode = "container" if docker.reachable() else "process"
        reason = "a Docker engine answers" if mode == "container" else f"no Docker engine answers at {docker.base_url}"
        ui.say(f"mode: {mode} ({reason})")
    try:
        layout = localrun.plan_layout(public, mode, int(lms_port), int(port_offset), use_nginx=False if no_nginx else None)
    except localrun.LocalRunError as exc:
        raise fail(str(exc)) from None
    ui.say("nginx: " + ("in front, rendered vhosts on the configured ports" if layout.nginx
                        else "not used (not installed or --no-nginx); the app listens on the configured ports"))
    app = localrun.with_ports(public, layout.internal)
    secret_key, client_secret = localrun.new_secrets()
    ui.register_secret(secret_key)
    ui.register_secret(client_secret)
    environment = localrun.app_environment(public, secret_key, client_secret)
    started = localrun.Started(mode=mode)
    try:
        if mode == "container":
            built = image.ensure_image(app, docker, network=network, progress=build_log, prompt=image.tty_prompt())
            ui.say(f"image: {built.ref} ({'built' if built.built else 'up to date'})")
            localrun.start_container(docker, built.ref, layout, environment, started)
        else:
            conf = localrun.render_process_mode(app, layout)
            localrun.start_supervisord(conf, layout, environment, started)
        if layout.nginx:
            localrun.start_nginx(localrun.render_nginx(public, layout), layout, started)
        localrun.start_devlms(layout, public, client_secret, started)
        started.urls = layout.urls()
        localrun.save_state(layout, started)
        ready = localrun.wait_ready(started.urls, started)
    except (localrun.LocalRunError, image.ImageError, DockerError) as exc:
        localrun.stop(started)
        localrun.clear_state()
        raise fail(str(exc)) from None
    except BaseException:
        localrun.stop(started)
        localrun.clear_state()
        raise
    ui.say(f"ready in {max(ready.values()):.1f}s ({mode} mode). Open:")
    for name, url in started.urls.items():
        ui.say(f"  {name:<12} {url}")
    ui.say("  sign in as   alice / alice-pass (student), instructor / instructor-pass")
    ui.say(f"  notebooks    {layout.efs}/ (the local stand-in for EFS)")
    if detach:
        ui.say("running in the background; stop it with `inv local-stop`")
        return
    ui.say("Ctrl-C stops everything.")
    import time

    try:
        while all(localrun._alive(pid) for pid in started.pids.values()):
            time.sleep(0.5)
        ui.say("a process exited; stopping the rest (see .local-run/logs/)")
    except KeyboardInterrupt:
        ui.say("stopping...")
    finally:
        stopped = localrun.stop(started)
        localrun.clear_state()
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
    stopped = localrun.stop(started)
    localrun.clear_state()
    ui.say(f"stopped: {', '.join(stopped) or 'nothing was still running'}")


ns = Collection(local_run, local_stop)
