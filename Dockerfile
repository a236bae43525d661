# domsec-milter: multi-stage build, runs as an unprivileged user.
#   docker build -t domsec-milter .
#   docker run -e DOMSEC_LISTEN=inet:0.0.0.0:8890 -e DOMSEC_HTTP_LISTEN=0.0.0.0:9464 \
#     -v /etc/domsec/keys:/keys:ro -e DOMSEC_KEYS_DIR=/keys domsec-milter
# deploy/docker/compose.yml runs it beside Postfix, Redis, Prometheus and Grafana.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY protocol ./protocol
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    DOMSEC_LISTEN=inet:0.0.0.0:8890 \
    DOMSEC_HTTP_LISTEN=0.0.0.0:9464 \
    DOMSEC_KEYS_DIR=/var/lib/domsec-milter/keys
RUN groupadd --system domsec && useradd --system --gid domsec --home-dir /var/lib/domsec-milter domsec \
    && mkdir -p /var/lib/domsec-milter && chown domsec:domsec /var/lib/domsec-milter
WORKDIR /opt/domsec-milter
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/dist/protocol ./dist/protocol
USER domsec
WORKDIR /var/lib/domsec-milter
EXPOSE 8890 9464
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:9464/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains open messages (DOMSEC_DRAIN_TIMEOUT); give it time: docker stop -t 45.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--single-threaded-gc", "--initial-heap-size=96", "/opt/domsec-milter/dist/src/cli.js"]
CMD ["serve"]
