"""The sandbox: an emulated AWS account and what stands behind it, for `inv sandbox` and the tests.

See sandbox/README.md for what it models and what it does not. Modules:

- server.py    MotoServer: the emulated AWS as a process (start, env, reset, control, clients)
- serve.py     that process: moto's server with the extensions below installed
- platforms.py, options.py, model.py, lifecycle.py, handlers.py   Elastic Beanstalk
- ecr.py       ECR's login and repository URIs naming a real registry
- control.py   what AWS has no API for: injected failures, lifecycle pace, instance addresses, the registry
- registry.py  a password-protected docker-registry behind ECR
- session.py   the whole sandbox for an operator (`inv sandbox`)
- processes.py free ports, readiness waits, stopping by PID
"""
