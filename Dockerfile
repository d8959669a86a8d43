# One image for every Caixa role. Build with `make image` (see README,
# "Container image"); for a plain Docker/Podman build:
#
#   docker build -t caixa:0.1.0-$(git rev-parse --short HEAD) \
#       --build-arg VCS_REF=$(git rev-parse --short HEAD) .
#
# The roles are the console scripts on PATH, chosen with the container command:
#   caixa-lancamentos serve|dispatch|migrate
#   caixa-consolidado serve|migrate|rebuild|reconcile
#   caixa ...  (the CLI)
#
# BASE_IMAGE must be a Debian-like image with python3 (>= 3.11, with venv and
# ensurepip) on PATH: python:3.11-slim-bookworm (python at /usr/local/bin) or a
# debootstrap of bookworm with python3 + python3-venv (python at /usr/bin), which
# is what tooling/image/build.sh uses where no registry is reachable. Builder and
# runtime share the base, so the venv's python symlink stays valid.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

# Optional build secret `ca_bundle`: a CA bundle for pip (PIP_CERT), for
# builds behind a TLS-intercepting proxy; tooling/image/build.sh passes the
# host's. Secrets never reach a layer.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Stub generator: the same tools `make proto` installs, in their own venv that
# never reaches the runtime stage.
RUN --mount=type=cache,id=caixa-pip,target=/root/.cache/pip \
    --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && python3 -m venv /opt/tools \
    && /opt/tools/bin/pip install 'grpcio-tools>=1.66' 'mypy-protobuf>=3.6' \
        'googleapis-common-protos>=1.65'

# Runtime dependencies first, from the two runtime distributions' pyproject
# files alone, so a source change reuses this layer. Only client/ (the stubs,
# the typed client and the CLI) and services/ reach the image: mesh/ and
# tooling/ are development tools (tooling/image/check.sh proves their absence).
COPY client/pyproject.toml client/pyproject.toml
COPY services/pyproject.toml services/pyproject.toml
RUN --mount=type=cache,id=caixa-pip,target=/root/.cache/pip \
    --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && python3 -m venv /opt/venv \
    && python3 -c 'import tomllib, sys; [print(d) for f in sys.argv[1:] for d in tomllib.load(open(f, "rb"))["project"]["dependencies"]]' \
        client/pyproject.toml services/pyproject.toml > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt

# Stubs (client/stubs) and the descriptor set (build/caixa.pb), as `make proto`.
COPY protos protos
COPY tooling/gen_protos.py tooling/gen_protos.py
RUN /opt/tools/bin/python tooling/gen_protos.py --out client/stubs --descriptor /out/build/caixa.pb

# The two distributions as regular, non-editable installs; then drop the
# installers from the runtime venv.
COPY client client
COPY services services
RUN --mount=type=cache,id=caixa-pip,target=/root/.cache/pip \
    --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && /opt/venv/bin/pip install --no-deps ./client ./services \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -m pip uninstall -y -q setuptools pip \
    && /opt/venv/bin/python -c 'import services.lancamentos.main, services.consolidado.main, caixa.cli.main, lancamentos, consolidado' \
    && rm -rf client/build services/build

# ---------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

RUN groupadd --gid 10001 caixa \
    && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin caixa

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /out/build/caixa.pb /app/build/caixa.pb

# Read-only root filesystem: nothing writes outside /tmp (no .pyc writes, HOME
# on /tmp). Mount an emptyDir on /tmp in Kubernetes.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    GRPC_HOST=0.0.0.0

WORKDIR /app
USER 10001:10001

# No ENTRYPOINT: the command is the role, e.g. `caixa-lancamentos serve`.
CMD ["caixa-lancamentos", "--help"]

ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="caixa" \
      org.opencontainers.image.description="Caixa gRPC services: lancamentos (ledger, outbox dispatcher) and consolidado (daily balances)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
