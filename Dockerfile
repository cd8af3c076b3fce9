FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends npm make && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/fairwire
COPY . .
RUN python -m pip install --no-cache-dir -e . && cd signalling/web && npm ci --no-audit --no-fund
ENV FAIRWIRE_HOST=0.0.0.0
EXPOSE 8080
CMD ["fairwire", "serve"]
