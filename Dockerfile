# A workshop image: JupyterLab with the course installed from requirements.lock and every
# dataset already in the cache, for a JupyterHub (DockerSpawner, Kubernetes) or Binder.
#
#   docker build -t generalization-lab .
#   docker run --rm -p 8888:8888 generalization-lab          # then open the printed URL
#
# Datasets are downloaded and verified at build time (`make data`), so the room needs no
# network. To build offline, copy the files into a folder of the build context and pass it:
#   docker build --build-arg LABUTILS_DATA_MIRROR=/home/jovyan/lab/mirror -t generalization-lab .
FROM python:3.11-slim

ARG NB_USER=jovyan
ARG NB_UID=1000
ARG LABUTILS_DATA_MIRROR=
ENV HOME=/home/${NB_USER} \
    LABUTILS_PROFILE=auto \
    LABUTILS_OFFLINE=0 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends make git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid ${NB_UID} ${NB_USER}

WORKDIR ${HOME}/lab
# the pinned environment first, so that a change to the notebooks reuses this layer
COPY --chown=${NB_USER} requirements.lock pyproject.toml README.md ./
RUN python -m pip install -r requirements.lock
COPY --chown=${NB_USER} . .
RUN python -m pip install --no-deps -e . \
    && LABUTILS_DATA_MIRROR=${LABUTILS_DATA_MIRROR} python -m labutils.data \
    && chown -R ${NB_USER} ${HOME}

USER ${NB_USER}
# the cache is complete: a missing file should fail at once, not wait on the network
ENV LABUTILS_OFFLINE=1
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "notebooks/"]
