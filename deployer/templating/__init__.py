"""Templating shared by every generated file and the converge script.

- engine.py   the jinja2 environment (StrictUndefined), render_template, RenderError
- context.py  Facts, the container layout, public URLs and the templates' contexts

It sits below both deployer/render (which assembles the rendered tree) and deployer/remote/hooks.py
(which renders the nginx vhosts into the converge script), so neither needs the other's internals.
"""
