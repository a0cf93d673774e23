# mcp-oauth-gateway. Build with dev dependencies, run with production ones only, as a non-root user.
# All configuration comes from MCP_GATEWAY_* variables (see --help); on 0.0.0.0 the default login
# credentials are refused, so set MCP_GATEWAY_USERNAME, MCP_GATEWAY_PASSWORD and MCP_GATEWAY_SECRET.
# No Docker engine runs on our machines: `npm run docker-check` (scripts/docker-check.mjs) replays these
# steps outside Docker. Keep to the instructions it knows: FROM, WORKDIR, ENV, COPY, RUN, USER, EXPOSE,
# HEALTHCHECK, CMD.
# The base image is Node 24, an LTS maintained until 2028-04-30, pinned to the exact release CI runs the whole test
# suite on (.ci/run reads it from the FROM line below and installs that Node from the npm registry): bump it here,
# in both FROM lines, and CI tests the new one.

FROM node:24.22.3-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY *.ts ./
COPY lib ./lib
COPY plugins ./plugins
COPY routes ./routes
# The demo upstream (`mcp-oauth-gateway demo`) is compiled too; it needs the MCP SDK, a dev dependency the image leaves out.
COPY examples/demo-upstream ./examples/demo-upstream
RUN npm run build

FROM node:24.22.3-slim
# Listen on every interface inside the container. The shutdown grace stays below `docker stop`'s 10 s,
# so requests in flight finish (or are cut) before the SIGKILL; raise both together. The metrics listener, off
# until MCP_GATEWAY_METRICS_PORT is set, must be reachable from outside the container to be scraped: publish
# its port to the monitoring network only.
ENV NODE_ENV=production \
    MCP_GATEWAY_HOST=0.0.0.0 \
    MCP_GATEWAY_PORT=8002 \
    MCP_GATEWAY_SHUTDOWN_GRACE=8 \
    MCP_GATEWAY_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Files stay root-owned: the gateway can read its code, not change it.
USER node
EXPOSE 8002
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.MCP_GATEWAY_PORT||8002)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM from `docker stop` itself (graceful shutdown, exit 0).
CMD ["node", "dist/server.js"]
