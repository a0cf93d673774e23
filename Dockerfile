# Build with dev dependencies, run with production ones only.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY *.ts ./
COPY lib ./lib
COPY plugins ./plugins
COPY routes ./routes
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production MCP_GATEWAY_HOST=0.0.0.0 MCP_GATEWAY_PORT=8002
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8002
# All configuration comes from MCP_GATEWAY_* variables; on 0.0.0.0 the default credentials are refused.
CMD ["node", "dist/server.js"]
