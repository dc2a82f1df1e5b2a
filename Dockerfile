# A task image for asyncrun's own tasks (`@asyncrun.task`) on a real Flyte cluster: Python, asyncrun
# with its object-store drivers (s3://, gs://), and `asyncrun-execute`, which the registered tasks run.
#
#   docker build -t REGISTRY/asyncrun:py3.11-0.1.0 .
#   docker push REGISTRY/asyncrun:py3.11-0.1.0
#   asyncrun run --remote -i REGISTRY/asyncrun:py3.11-0.1.0 hello.py wf
#
# Build it with the Python your tasks were written for (the default image tag names it):
#   docker build --build-arg PYTHON_VERSION=3.12 -t REGISTRY/asyncrun:py3.12-0.1.0 .
# Extra packages your tasks import: `FROM` this image and `pip install` them.
# (flytekit files need no asyncrun image: their tasks run in flytekit's own images.)
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /src/asyncrun/
COPY asyncrun /src/asyncrun/asyncrun
RUN pip install "/src/asyncrun[s3,gcs]" && rm -rf /src/asyncrun \
    && useradd --create-home --uid 1000 flyte

# Task code is unpacked here (the registered `--dest-dir .`) and imported from here.
WORKDIR /home/flyte
USER flyte
