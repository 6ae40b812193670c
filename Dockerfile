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
# Defaults for this image, used when DATABASE_PATH / HTTP_HOST are unset or blank (as in a .env made from
# .env.example, which `--env-file` and compose's env_file pass as blank values that would hide a plain ENV):
# the database in the /data volume, and listening on every interface so published ports and callbacks reach
# the bot. A value set in .env still wins; Easel warns at start about values that cannot work in here.
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/easel/bin:$PATH \
    EASEL_DEFAULT_DATABASE_PATH=/data/easel.db \
    EASEL_DEFAULT_HTTP_HOST=0.0.0.0
RUN groupadd --system --gid 10001 easel \
 && useradd --system --uid 10001 --gid easel --home-dir /data --shell /usr/sbin/nologin easel \
 && mkdir -p /data && chown easel:easel /data
COPY --from=build /opt/easel /opt/easel
USER easel
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('HTTP_PORT', '').strip() or '8080'), timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
