# syntax=docker/dockerfile:1
# Easel: a lean image, built in two stages, run as an unprivileged user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN python -m venv /opt/easel \
 && /opt/easel/bin/pip install --upgrade pip \
 && /opt/easel/bin/pip install .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/easel/bin:$PATH \
    DATABASE_PATH=/data/easel.db \
    HTTP_HOST=0.0.0.0 HTTP_PORT=8080
RUN groupadd --system --gid 10001 easel \
 && useradd --system --uid 10001 --gid easel --home-dir /data --shell /usr/sbin/nologin easel \
 && mkdir -p /data && chown easel:easel /data
COPY --from=build /opt/easel /opt/easel
USER easel
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"HTTP_PORT\", \"8080\")}/healthz', timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
