# gov-assistant: one image for every replica (docs/deployment.md).
#   docker build -t gov-assistant:0.1.0 .
# The demo project (config.yml, domain.yml, data/, actions/, knowledge_base/) is baked in at /app and its NLU
# model is trained at build time, so a container starts serving without training. Per-environment settings
# replace /app/config.yml with a mounted file (config.yml has no environment-variable overrides).
FROM python:3.11-slim

# HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE: models come from pip packages or local folders only, never the hub.
# OMP/MKL threads 1: faiss and torch each bring an OpenMP runtime; scale with replicas, not threads.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

# torch first, pinned, from the CPU index: `pip install .` alone would resolve torch>=2.4 to a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /app

# dependencies before sources, so editing code does not reinstall them (pip sees torch already satisfied)
COPY pyproject.toml README.md ./
COPY assistant ./assistant
COPY connectors ./connectors
COPY knowledge ./knowledge
COPY nlu ./nlu
RUN pip install . \
    && python -c "import torch; assert not torch.version.cuda, 'a CUDA torch build was installed'"

# the demo project the server runs (`--project /app`)
COPY config.yml domain.yml endpoints.yml ./
COPY data ./data
COPY actions ./actions
COPY knowledge_base ./knowledge_base

# var/index is where every replica reads the published knowledge index (a shared volume in production); it
# exists in the image, owned by the app user, so a fresh named volume mounted there inherits that owner.
RUN mkdir -p /app/var/index /app/models && chown -R app:app /app

USER app

# trained once here, so containers start without training (serve loads the newest model in /app/models)
RUN gov-assistant train --project /app

EXPOSE 8000

# /healthz: the process answers. /readyz (model, database, index) is for load balancers and Kubernetes.
# start-period covers the first start on an empty database, which imports and publishes the bundled knowledge base.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["gov-assistant", "serve", "--project", "/app", "--host", "0.0.0.0", "--port", "8000"]
