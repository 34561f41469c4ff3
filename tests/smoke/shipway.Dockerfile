# The Shipway image the rendered model pods run (init container `shipway model pull`, sidecar
# `shipway sidecar`), built from this checkout for the kind smoke suite and loaded into kind under
# the name the manifests use (catalog.SHIPWAY_IMAGE). Build from the repository root:
#   docker build -f tests/smoke/shipway.Dockerfile -t "$(python3 -c 'from shipway import catalog; print(catalog.SHIPWAY_IMAGE)')" .
FROM python:3.11-slim
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN pip install --no-cache-dir '/src[model]' && rm -rf /src
# Team namespaces enforce Pod Security "restricted": a numeric non-root user.
USER 65532
ENTRYPOINT []
