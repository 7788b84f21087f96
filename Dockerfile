# One image for every role: worker, API, Flower and (for demos) the Exchange simulator; the command picks
# the role (see docker-compose.yml). Configuration comes only from the environment at run time: no secret,
# key file or profile is copied into the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY contract ./contract
COPY worker ./worker
COPY tasks ./tasks
COPY campaigns ./campaigns
COPY producer ./producer
COPY exchange_simulator ./exchange_simulator
RUN pip install ".[s3]" \
    && useradd --create-home --uid 10001 ews-ir \
    && mkdir -p /var/lib/ews-ir/artifacts /var/lib/ews-ir/keys \
    && chown -R ews-ir /var/lib/ews-ir

# Not root: whoever can write to the broker can make workers run tasks; they get an unprivileged user.
USER ews-ir
ENV EWS_IR_ARTIFACT_DIR=/var/lib/ews-ir/artifacts \
    EWS_IR_API_KEYS_FILE=/var/lib/ews-ir/keys/api-keys.json \
    EWS_IR_LOG_FORMAT=json
CMD ["ews-ir", "--help"]
