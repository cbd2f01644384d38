"""The seed's 14-step deployment checklist, each step a small object with check() and apply().

Run order follows the seed numbers except where an input must exist first: the deployment token
(10, 11) before the build (6); storage (14a) before rendering (13), because the bundle names the
file system.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer import REPO_ROOT
from deployer.steps import Action, Check, Context, StepError

BUNDLE_DIR = REPO_ROOT / "build" / "bundle"
RENDER_DIR = REPO_ROOT / "build" / "render"


@dataclass
class NotYetBuilt:
    """A checklist step whose implementation arrives with its own issue; shown in every plan."""

    number: int | str
    name: str
    arrives_with: str

    def check(self, ctx: Context) -> Check:
        return Check("pending", f"not implemented yet ({self.arrives_with})")

    def apply(self, ctx: Context, check: Check) -> str | None:
        raise StepError(f"step {self.number} is not implemented yet ({self.arrives_with})")


@dataclass
class Ports:
    """Seed step 12: one setting per service drives every file that mentions its port."""

    number: int = 12
    name: str = "Ports"

    def check(self, ctx: Context) -> Check:
        ports = ctx.settings.ports
        sources = {ctx.loaded.sources.get(f"ports.{svc}", "defaults") for svc in ("sifu", "jupyter")}
        return Check.ok(f"sifu {ports.sifu}, jupyter {ports.jupyter} (from {', '.join(sorted(sources))}): "
                        "supervisord, Jupyter, Sifu, nginx, listeners and security groups follow")

    def apply(self, ctx: Context, check: Check) -> str | None:
        return None


@dataclass
class RenderBundle:
    """Seed step 13: render .ebextensions, .platform and Dockerrun.aws.json into the bundle."""

    number: int = 13
    name: str = "Render the bundle"

    def _bundle(self, ctx: Context):
        from deployer import bundle, render

        if "bundle" not in ctx.facts:
            facts = render.Facts(
                account_id=ctx.facts.get("account_id", render.Facts.account_id),
                image_uri=ctx.facts.get("image_uri", ""),
                file_system_id=ctx.facts.get("file_system_id", ""),
                offline="account_id" not in ctx.facts,
                instance_security_group=ctx.facts.get("instance_security_group") or "",
                secret_arns=tuple(sorted((ctx.facts.get("secret_arns") or {}).items())),
                rds_endpoint=ctx.facts.get("rds_endpoint") or "",
            )
            if (ctx.settings.rds.mode == "managed" and not facts.rds_endpoint and not ctx.dry_run):
                raise StepError("the managed database has no endpoint yet (RDS is still creating it): wait a few "
                                "minutes and run the deploy again; nothing was uploaded")
            try:
                tree = render.render_all(ctx.settings, facts)
            except render.RenderError as exc:
                raise StepError(str(exc)) from None
            ctx.facts["render_tree"] = tree
            ctx.facts["bundle"] = bundle.build(tree)
        return ctx.facts["bundle"]

    def check(self, ctx: Context) -> Check:
        built = self._bundle(ctx)
        path = BUNDLE_DIR / built.filename
        pending_answers = {k: v for k, v in ctx.answers.items() if ctx.loaded.settings.get(k) != v or
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
        from deployer import bundle, config, render

        built = self._bundle(ctx)
        render.write_tree(ctx.facts["render_tree"], RENDER_DIR)
        path = bundle.write(built, BUNDLE_DIR)
        if ctx.answers:
            config.save_answers(ctx.loaded.env_name, ctx.answers)
        return f"bundle {built.version_label} written to {path.relative_to(REPO_ROOT)}"


def deploy_steps() -> list:
    """Every step in run order: the AWS and image steps (checklist_aws, checklist_image) in their seed slots."""
    from deployer.checklist_aws import with_aws_steps
    from deployer.checklist_image import with_image_steps

    return with_image_steps(with_aws_steps(placeholder_steps()))


def placeholder_steps() -> list:
    """The checklist with every AWS-facing step still a placeholder (with_aws_steps swaps them in)."""
    return [
        NotYetBuilt(1, "Tools and credentials", "the deploy issue"),
        NotYetBuilt(2, "Registry status", "the deploy issue"),
        NotYetBuilt(3, "Registry and instance role access", "the deploy issue"),
        NotYetBuilt(4, "Registry login details", "the deploy issue"),
        NotYetBuilt(5, "Docker login", "the images issue"),
        NotYetBuilt(10, "Deployment token", "the images issue"),
        NotYetBuilt(11, "Ask for the token when needed", "the images issue"),
        NotYetBuilt(6, "Build the image if out of date", "the images issue"),
        NotYetBuilt(7, "Push the image", "the images issue"),
        NotYetBuilt(8, "Elastic Beanstalk application", "the deploy issue"),
        NotYetBuilt(9, "Elastic Beanstalk environment", "the deploy issue"),
        Ports(),
        NotYetBuilt("14a", "Storage: EFS and database", "the deploy issue"),
        RenderBundle(),
        NotYetBuilt("14b", "Application version", "the deploy issue"),
        NotYetBuilt("14c", "Create or update the environment", "the deploy issue"),
        NotYetBuilt("14d", "Wait for Ready", "the deploy issue"),
        NotYetBuilt("14e", "Converge the instances", "the instances issue"),
        NotYetBuilt("14f", "Smoke check", "the deploy issue"),
    ]
