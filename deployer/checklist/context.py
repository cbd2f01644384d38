"""What the steps of one deploy share: the settings, the facts the steps learn, counters and the test seams."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from deployer import render, ui
from deployer.aws import Aws
from deployer.aws.ecr import RegistryLogin
from deployer.bundle import Bundle
from deployer.docker_client import Auth, Docker
from deployer.image import ImagePlan
from deployer.steps import Counters


@dataclass(frozen=True)
class EbRequest:
    """The Elastic Beanstalk request step 14c made: its events are the ones after ``since`` with its id."""

    request_id: str
    since: datetime


@dataclass
class Facts:
    """What the steps learn from AWS and the build, each set by the step named and read by later ones."""

    account_id: str = ""                                # 1
    repository_name: str = ""                           # 2, 3
    registry_login: RegistryLogin | None = None         # 4
    repository_uri: str = ""                            # 4: the login's registry host/repository_name
    registry_auth: Auth | None = None                   # 5
    deployment_token: SecretStr | None = None           # 10, 11 (masked in every repr)
    image_plan: ImagePlan | None = None                 # 6, 7
    image_ref: str = ""                                 # 6, 7: the local image
    image_uri: str = ""                                 # 6, 7: the image in the registry
    platform_arn: str = ""                              # 9
    cname: str = ""                                     # 9: the environment's CNAME, or the one it will get
    # Settings a step resolved that the next run should reuse (eb.platform_arn, step 9); step 13 saves them.
    answers_to_save: dict[str, Any] = field(default_factory=dict)
    file_system_id: str = ""                            # 14a
    instance_security_group: str = ""                   # 14a: EFS and RDS admit traffic only from it
    load_balancer_security_group: str = ""              # 14a: the instances admit the service ports from it
    secret_parameters: dict[str, str] = field(default_factory=dict)  # 14a: container variable -> SSM name
    secret_arns: dict[str, str] = field(default_factory=dict)        # 14a: container variable -> ARN
    rds_endpoint: str | None = None                     # 14a (rds.mode managed), once RDS has one
    render_tree: render.Tree | None = None              # 13
    bundle: Bundle | None = None                        # 13
    version_label: str = ""                             # 14b
    option_changes: dict[tuple[str, str], str] = field(default_factory=dict)  # 14c
    eb_request: EbRequest | None = None                 # 14c
    converge_hosts: list[str] = field(default_factory=list)  # 14e
    keep_plan: Any = None                               # 14g: deployer.kept_images.KeepPlan

    def for_bundle(self) -> render.Facts:
        """What rendering the bundle needs; without an account (no AWS yet) the render is offline."""
        return render.Facts(account_id=self.account_id or render.Facts.account_id, image_uri=self.image_uri,
                            file_system_id=self.file_system_id, offline=not self.account_id,
                            instance_security_group=self.instance_security_group,
                            load_balancer_security_group=self.load_balancer_security_group, cname=self.cname,
                            secret_arns=tuple(sorted(self.secret_arns.items())), rds_endpoint=self.rds_endpoint or "")

    def for_converge(self) -> render.Facts:
        """What the converge script needs on the instances."""
        return render.Facts(account_id=self.account_id or render.Facts.account_id, image_uri=self.image_uri,
                            file_system_id=self.file_system_id, offline=False)


@dataclass
class Context:
    """Shared by the steps of one run: settings, facts learned so far, counters, operator choices."""

    loaded: Any  # deployer.config.Loaded
    dry_run: bool = True
    assume_yes: bool = False
    interactive: bool = False
    wait: bool = True
    facts: Facts = field(default_factory=Facts)
    counters: Counters = field(default_factory=Counters)
    emit: Callable[[str], None] = ui.say
    sleep: Callable[[float], None] = time.sleep  # between polls; the tests' emulated AWS needs no waiting
    docker: Docker | None = None  # the engine; found on first use unless given
    _aws: Aws | None = field(default=None, repr=False)

    @property
    def settings(self):
        return self.loaded.settings

    def aws(self) -> Aws:
        """The run's AWS access (created once): read-only in a dry run, counting calls into the counters."""
        if self._aws is None:
            def count(service: str, operation: str, kind: str) -> None:
                if kind == "read":
                    self.counters.aws_read += 1
                else:
                    self.counters.aws_mutate += 1
                    self.counters.mutating_calls.append(f"{service}.{operation}")

            s = self.settings
            self._aws = Aws(profile=s.aws.profile or None, region=s.eb.region, read_only=self.dry_run, on_call=count)
        return self._aws
