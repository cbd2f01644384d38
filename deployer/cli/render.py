"""Tasks that render the generated files."""

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, fail, load_config


@task(help={"env": ENV_HELP, "out": "directory to write into (default build/render)",
            "sifu_port": "override ports.sifu", "jupyter_port": "override ports.jupyter"})
def render(c, env=None, out="build/render", sifu_port=None, jupyter_port=None):
    """Render every generated file (EB bundle tree and image configs) and validate it.

    Output is deterministic: the same config gives byte-identical files. Files left from an
    earlier render that are no longer generated are removed. Safe to re-run.
    """
    from pathlib import Path

    from deployer import render as rendering
    from deployer import ui

    loaded = load_config(env, {"ports.sifu": sifu_port, "ports.jupyter": jupyter_port})
    try:
        tree = rendering.render_all(loaded.settings)
    except rendering.RenderError as exc:
        raise fail(f"render failed, nothing written: {exc}") from None
    target = Path(out)
    written = rendering.write_tree(tree, target)
    for check in tree.validations:
        ui.say(f"validated: {check}")
    ui.say(f"wrote {len(written)} files under {target}/")
    for path in written:
        ui.say(f"  {path.relative_to(target)}")


ns = Collection(render)
