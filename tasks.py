"""Invoke entry point: assembles each module's tasks into one flat namespace. No logic here."""

from invoke import Collection

from deployer.cli import aws, config, deploy, dev, image, local, ops, remote, render, sandbox

namespace = Collection()
for module in (config, render, image, local, deploy, remote, dev, aws, ops, sandbox):
    for task in module.ns.tasks.values():
        namespace.add_task(task)
