# ---- build: compile the TypeScript into dist/ ----
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script to build (npm 11 would block them unless approved anyway).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# The client SDK's ES modules, which /demo loads from /sdk/ (it compiles src/protocol/ into them).
COPY client ./client
RUN npm run client:build

# ---- runtime: production dependencies and the compiled server only ----
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production PORT=8080
WORKDIR /app
# package.json also tells Node that dist/ is ESM ("type": "module").
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# /demo and /admin (src/pages/ reads these at boot, from /app/public and /app/client/dist).
COPY public ./public
COPY --from=build /app/client/dist ./client/dist
# The files stay owned by root, so the server cannot modify its own code. Only the folder of
# persistent rooms belongs to the runtime user (made before VOLUME, so a new volume inherits it).
ENV DATA_DIR=/app/data
RUN mkdir -p /app/data && chown node:node /app/data && chmod 700 /app/data
VOLUME ["/app/data"]
# By uid (node is 1000): Kubernetes' runAsNonRoot can only check a numeric user.
USER 1000:1000
EXPOSE 8080
# Slim images have no curl: Node's fetch checks liveness.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form, no npm and no shell: SIGTERM reaches node, which shuts down gracefully.
CMD ["node", "dist/main.js"]
