# syntax=docker/dockerfile:1
# The Shipway image: what model pods run (the `shipway model pull` init container and the
# `shipway sidecar`) and the platform's small Shipway services. Only their runtime dependencies
# (requirements-image.txt, installed from requirements-image.lock: every version pinned and every file
# checked against its hash): no Pulumi, no cloud SDKs. Non-root, and fine with a read-only root
# filesystem: nothing is written outside the /tmp volume the rendered pods mount.
#
#   docker build -t shipway:dev .
#
# The base is pinned by the digest of its multi-platform index, so amd64 and arm64 builds start
# from the same release; Dependabot (.github/dependabot.yml) proposes new digests.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/shipway
WORKDIR /src
COPY requirements-image.lock ./
RUN /opt/shipway/bin/pip install --no-compile --require-hashes -r requirements-image.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/shipway/bin/pip install --no-compile --no-deps . \
 && /opt/shipway/bin/python -m compileall -q /opt/shipway/lib \
 && /opt/shipway/bin/shipway --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="shipway" \
      org.opencontainers.image.description="Shipway model sidecar, artifact puller and platform services" \
      org.opencontainers.image.source="https://github.com/shipway-dev/shipway" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/shipway /opt/shipway
# Bytecode is compiled at build time; at run time nothing may write beside the code.
ENV PATH=/opt/shipway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Pod Security "restricted" needs a numeric non-root user.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["shipway"]
CMD ["--help"]
