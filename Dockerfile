# syntax=docker/dockerfile:1
# One image for the FELES operator, orchestrator and workers (ENTRYPOINT feles):
#   docker build -t feles:0.1.0 .
#   docker run --rm feles:0.1.0 run /opt/feles/examples/quickstart.yaml --workers 2
# CPU-only torch; Fashion-MNIST inside (Debian's dataset-fashion-mnist); runs as the non-root user 10001.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment with FELES and its dependencies -------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the CPU wheel index: the default index would bring gigabytes of CUDA libraries.
# The version lies in pyproject.toml's torch range; `pip install .` below then finds it already satisfied.
ARG TORCH_VERSION=2.13.0
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY feles ./feles
COPY operator ./operator
# The bytecode pip compiled stays in the image (~65 MB): the pods' root filesystem is read-only and
# PYTHONDONTWRITEBYTECODE is set, so without it every orchestrator and worker start compiled torch's ~1,500
# modules again (4.1-4.4 s of CPU per start, measured on a 2-core EPYC).
RUN pip install --no-cache-dir . \
    && pip uninstall --yes pip

# --- data: the Fashion-MNIST IDX files from Debian ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS data
RUN apt-get update \
    && apt-get install --yes --no-install-recommends dataset-fashion-mnist=0.0~git20200523.55506a9-1 \
    && rm -rf /var/lib/apt/lists/*

# --- runtime: no compiler, no pip, no package lists ---------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="feles" \
      org.opencontainers.image.description="FELES federated learning simulator: operator, orchestrator and worker" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 feles \
    && useradd --uid 10001 --gid feles --no-create-home --home-dir /tmp --shell /usr/sbin/nologin feles
COPY --from=build /opt/venv /opt/venv
COPY --from=data /usr/share/datasets/fashion-mnist /usr/share/datasets/fashion-mnist
COPY examples /opt/feles/examples
# A read-only root filesystem is the norm on Kubernetes: everything that writes goes to /tmp (an emptyDir).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["feles"]
CMD ["--help"]
