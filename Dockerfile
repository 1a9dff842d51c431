# One image for every role: the sync or async app (uvicorn), the harness (`bench run`), a Locust master
# (`locust ... --master`) or a load-generator worker (`bench worker`). docker-compose.yml uses it for each.
# Dependencies are compiled and installed at build time; containers run as the non-root user `bench`.

FROM python:3.11-slim AS wheels
# mysqlclient (the compiled sync driver of the like-for-like driver pairs) builds against libmariadb.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml /src/pyproject.toml
# Wheels of every dependency listed in pyproject.toml (and setuptools, for the editable install below).
RUN python -c "import subprocess, sys, tomllib; \
p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
deps = [*p['dependencies'], *p['optional-dependencies']['mysqlclient'], 'setuptools>=68']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'wheel', '--no-cache-dir', '-w', '/wheels', *deps])"

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 bench
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY --from=wheels /wheels /wheels
RUN python -m venv /opt/venv && pip install --no-index /wheels/*.whl && rm -rf /wheels
WORKDIR /home/bench/app
COPY --chown=bench:bench . .
# Editable: the repository stays the project root (results/, .run/, loadtests/ and variants/ live here).
RUN pip install --no-index --no-deps --no-build-isolation -e ".[mysqlclient]" \
 && mkdir -p results .run && chown bench:bench results .run
USER bench
EXPOSE 8001 8002 8089 5557
CMD ["bench", "--help"]
