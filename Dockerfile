ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
COPY pyproject.toml README.md /src/
COPY buildspec /src/buildspec
COPY grammar /src/grammar
RUN pip install --no-cache-dir /src && rm -rf /src
ENTRYPOINT ["buildspec"]
