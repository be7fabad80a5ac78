# One image for web, worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock ./
COPY certflow certflow
COPY handlers handlers
COPY worker worker
COPY processes processes
COPY alembic.ini ./
# Editable: migrations, alembic.ini and processes/ are read from this source tree.
RUN pip install --no-cache-dir -c requirements.lock -e .
ENV CERTFLOW_ENV=production CERTFLOW_VAR_DIR=/var/lib/certflow
USER nobody
EXPOSE 8000
