# syntax=docker/dockerfile:1
# LayerLab: stage 1 builds the editor with Node, stage 2 is the Python image that serves it and
# trains. One image serves as api, ray-head and worker (docker-compose.yml).
#
#   docker build -t layerlab .                                    # CUDA torch from PyPI
#   docker build -t layerlab --build-arg TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" .

ARG NODE_VERSION=20
ARG PYTHON_VERSION=3.11

# --- editor -----------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS editor
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# vite writes the bundle to ../backend/layerlab/static, which the backend serves at /.
RUN mkdir -p /src/backend/layerlab && npm run build

# --- python -----------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS app
ARG TORCH_SPEC="torch==2.13.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LAYERLAB_DATA_DIR=/data

RUN useradd --create-home --uid 1000 layerlab \
    && mkdir -p /data /app \
    && chown layerlab:layerlab /data
WORKDIR /app

# torch first, in its own layer: it is by far the largest and changes least often.
RUN pip install ${TORCH_SPEC}

# Dependencies before the source, so editing code does not reinstall them.
COPY pyproject.toml README.md* ./
COPY backend/ backend/
COPY --from=editor /src/backend/layerlab/static/ backend/layerlab/static/
RUN pip install '.[cluster,postgres]' \
    && pip install --no-deps mlxtend==0.25.0 \
    && python -c "import layerlab, layerlab.cluster, ray"

USER layerlab
VOLUME ["/data"]
EXPOSE 8000 6379
# Off loopback the server refuses to start without LAYERLAB_TOKEN: docker run -e LAYERLAB_TOKEN=...
CMD ["layerlab", "serve", "--host", "0.0.0.0", "--port", "8000"]
