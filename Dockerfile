# The Sifu notebooks image: the base image (base-image/Dockerfile) plus Sifu, its Python
# dependencies and the rendered supervisord and Jupyter configuration.
# Build it with `./inv build-image`: deployer/image.py stages the context (this file, sifu/,
# image/*.conf rendered from config, requirements-sifu.txt) and tags the image by its content hash.
# Secrets never enter the image: the signing key and OAuth2 secret arrive as environment
# variables at run time; the deployment token is used only by sifu-source.Dockerfile.

# The base image, tagged by its own content hash.
ARG BASE_IMAGE=sifu-notebooks-base:latest
# Where Sifu's code comes from: "repository" (this repository's sifu/, staged into the context) or
# the image that sifu-source.Dockerfile cloned from a private repository.
ARG SIFU_SOURCE=repository

FROM scratch AS repository
COPY sifu/ /sifu/

FROM ${SIFU_SOURCE} AS sifu-source

FROM ${BASE_IMAGE}
ARG SIFU_PORT=3334
ARG JUPYTER_PORT=3335

USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Kernels (each its student's own uid, no supplementary groups) write only in their student's folder and their own
# home, which the kernel broker counts against the student's disk cap: the image's shared scratch folders, on the
# container's own disk, are for the service users' group (sifu; jupyter is in it) and root only.
RUN mkdir -p /tmp /var/tmp /run/lock \
    && chgrp sifu /tmp /var/tmp /run/lock \
    && chmod 1770 /tmp /var/tmp /run/lock

# Sifu's own dependencies, pinned by the same constraints as the base.
# rfc3987-syntax is removed again: jsonschema[format-nongpl] (via jupyter-events) pulls it in only to
# check the "iri" string format, which no Jupyter schema uses, and importing it compiles ~30 Earley
# parsers: about 1.1 s of CPU on every Jupyter start. Without it jsonschema skips that format check.
# (It must go after this install: pip would restore it while resolving the extras.)
COPY requirements-sifu.txt /opt/sifu/requirements.txt
RUN pip install --no-cache-dir -c /opt/venv/constraints.txt -r /opt/sifu/requirements.txt \
    && pip uninstall --yes rfc3987-syntax \
    && ! python -c 'import rfc3987_syntax' 2>/dev/null

# Sifu itself, importable from the venv (python -m sifu; sifu.jupyter for Jupyter), with its
# bytecode compiled now: PYTHONDONTWRITEBYTECODE means it would be compiled at every start.
COPY --from=sifu-source /sifu /opt/sifu/sifu
RUN python -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "sifu.pth").write_text("/opt/sifu\n")' \
    && python -m compileall -q /opt/sifu \
    && python -c 'import sifu'

# Jupyter finds kernel provisioners by entry point, and sifu is on the path rather than installed: register
# the kernel broker's provisioner (sifu/kernel_provisioner.py; pyproject.toml names the same) and check it.
RUN python -c 'import pathlib, sysconfig; d = pathlib.Path(sysconfig.get_paths()["purelib"], "sifu_kernel_broker-0.dist-info"); d.mkdir(); (d / "METADATA").write_text("Metadata-Version: 2.1\nName: sifu-kernel-broker\nVersion: 0\n"); (d / "entry_points.txt").write_text("[jupyter_client.kernel_provisioners]\nsifu-kernel-broker = sifu.kernel_provisioner:BrokerProvisioner\n")' \
    && python -c 'from jupyter_client.provisioning.factory import KernelProvisionerFactory as F; assert "sifu-kernel-broker" in F.instance().get_provisioner_entries()'

# Rendered from supervisord.conf.j2 and jupyter_server_config.py.j2 by deployer/render.py.
COPY image/supervisord.conf image/jupyter_server_config.py /etc/sifu/

ENV SIFU_HEALTH_URLS="http://127.0.0.1:${SIFU_PORT}/health http://127.0.0.1:${JUPYTER_PORT}/api"
EXPOSE ${SIFU_PORT} ${JUPYTER_PORT}
LABEL sifu.role=app

# supervisord runs as root so that each program runs as its own service user with only its own
# environment (sifu/launch.py drops to sifu or jupyter before exec); the kernel broker stays root to start
# each student's kernels as their own uid (sifu/kernel_broker.py); nothing else runs as root, and the root ones hold
# only the capabilities in sifu/confine.py.
# hadolint ignore=DL3002
USER 0:0
WORKDIR /notebooks

# Healthy when both services answer HTTP on the configured ports.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; [r.urlopen(u, timeout=4).close() for u in os.environ['SIFU_HEALTH_URLS'].split()]"]

# sifu/confine.py first, as PID 1, then exec dumb-init (still PID 1): the whole tree keeps only the capabilities
# the kernel broker needs, with no_new_privs (EB's Dockerrun.aws.json v1 cannot say --cap-drop or
# --security-opt). -I: nothing from the working directory (/notebooks) or PYTHON* variables.
ENTRYPOINT ["python", "-I", "-m", "sifu.confine", "--", "dumb-init", "--"]
# supervisord through sifu/supervise.py, which carries upstream's fix for its idle second before the first program.
CMD ["python", "-I", "-m", "sifu.supervise", "--nodaemon", "--configuration", "/etc/sifu/supervisord.conf"]
