"""Seed steps 12 (ports) and 13 (render the bundle: .ebextensions, .platform, Dockerrun.aws.json)."""

from __future__ import annotations

from dataclasses import dataclass

from deployer import REPO_ROOT, bundle, config, render
from deployer.checklist.context import Context
from deployer.steps import Action, Check, ReadOnly, StepError

BUNDLE_DIR = REPO_ROOT / "build" / "bundle"
RENDER_DIR = REPO_ROOT / "build" / "render"


@dataclass
class Ports(ReadOnly):
    """Seed step 12: one setting per service drives every file that mentions its port."""

    number: int = 12
    name: str = "Ports"

    def check(self, ctx: Context) -> Check:
        ports = ctx.settings.ports
        sources = {ctx.loaded.sources.get(f"ports.{svc}", "defaults") for svc in ("sifu", "jupyter")}
        return Check.ok(f"sifu {ports.sifu}, jupyter {ports.jupyter} (from {', '.join(sorted(sources))}): "
                        "supervisord, Jupyter, Sifu, nginx, listeners and security groups follow")


@dataclass
class RenderBundle:
    """Seed step 13: render .ebextensions, .platform and Dockerrun.aws.json into the bundle."""

    number: int = 13
    name: str = "Render the bundle"

    def _bundle(self, ctx: Context) -> bundle.Bundle:
        if ctx.facts.bundle is None:
            facts = ctx.facts.for_bundle()
            if (ctx.settings.rds.mode == "managed" and not facts.rds_endpoint and not ctx.dry_run):
                raise StepError("the managed database has no endpoint yet (RDS is still creating it): wait a few "
                                "minutes and run the deploy again; nothing was uploaded")
            try:
                tree = render.render_all(ctx.settings, facts)
            except render.RenderError as exc:
                raise StepError(str(exc)) from None
            ctx.facts.render_tree = tree
            ctx.facts.bundle = bundle.build(tree)
        return ctx.facts.bundle

    def check(self, ctx: Context) -> Check:
        built = self._bundle(ctx)
        path = BUNDLE_DIR / built.filename
        pending_answers = {k: v for k, v in ctx.facts.answers_to_save.items() if ctx.loaded.settings.get(k) != v or
                           ctx.loaded.sources.get(k, "defaults") == "defaults"}
        actions = []
        if not path.exists():
            actions.append(Action("write", f"build/bundle/{built.filename}", f"{len(built.names)} files"))
        if pending_answers:
            actions.append(Action("save", ".deploy-answers.yml", ", ".join(sorted(pending_answers))))
        if not actions:
            return Check.ok(f"bundle {built.version_label} up to date ({len(built.names)} files)")
        return Check.change(f"bundle {built.version_label}", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        built = self._bundle(ctx)
        render.write_tree(ctx.facts.render_tree, RENDER_DIR)
        path = bundle.write(built, BUNDLE_DIR)
        if ctx.facts.answers_to_save:
            config.save_answers(ctx.loaded.env_name, ctx.facts.answers_to_save)
        return f"bundle {built.version_label} written to {path.relative_to(REPO_ROOT)}"
