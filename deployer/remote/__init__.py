"""Work on the instances: pure command builders, and one executor over a Fabric Group.

- commands.py  pure builders: argument lists and shell lines (shlex-quoted), tested as text
- hooks.py     composes them into the converge script; the same text is the bundle's
               .platform hooks and what Fabric sends (converge_script, script_context)
- executor.py  converge(hosts, settings, facts, phases, serial) -> RunResult; print_results;
               student_usage(targets, settings): sifu.usage from every instance's app container
- usage.py     pure: sifu.usage's JSON per instance -> the per-instance and per-student rows of `inv status`
- targets.py   which hosts: --hosts, or environment_hosts(settings) (AWS discovery seam)
"""
