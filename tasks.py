"""Invoke entry point: assembles each module's tasks into one flat namespace. No logic here."""

from invoke import Collection

from deployer.cli import config, deploy, dev, image, local, render

namespace = Collection()
for module in (config, render, image, local, deploy, dev):
    for task in module.ns.tasks.values():
        namespace.add_task(task)
