# Sifu's code from a private git repository (sifu.source: git), for the final Dockerfile's
# SIFU_SOURCE. The deployment token reaches the clone only as a BuildKit secret mounted for one
# RUN step: it is never a build arg, an environment variable, a file in a layer, or a remote URL.
# The result is an image holding nothing but sifu/ (FROM scratch): the clone stage is discarded.
# Built by `./inv build-image` with DOCKER_BUILDKIT=1 and `--secret id=deployment_token,src=...`.

ARG BASE_IMAGE=python:3.11.10-slim-bookworm
FROM ${BASE_IMAGE} AS clone

ARG SIFU_GIT_URL
ARG SIFU_GIT_REF=main

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The official slim image has no git; it is installed in this throwaway stage only.
# hadolint ignore=DL3008
RUN if ! command -v git >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends git \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The credential helper reads the token from the secret mount when git asks for it, so the
# token is on no command line and in no git config. Any ref (branch, tag or commit) works.
# The single quotes are deliberate: git's shell expands the helper, not this RUN.
# hadolint ignore=SC2016
RUN --mount=type=secret,id=deployment_token,required=true \
    test -n "${SIFU_GIT_URL}" \
    && git init --quiet /src \
    && GIT_TERMINAL_PROMPT=0 git -C /src \
        -c credential.helper='!f() { echo username=x-access-token; printf "password=%s\n" "$(cat /run/secrets/deployment_token)"; }; f' \
        fetch --quiet --depth 1 "${SIFU_GIT_URL}" "${SIFU_GIT_REF}" \
    && git -C /src checkout --quiet FETCH_HEAD \
    && test -d /src/sifu \
    && rm -rf /src/.git

FROM scratch
COPY --from=clone /src/sifu /sifu/
