# syntax=docker/dockerfile:1

# ---- build stage: install all deps, compile src/ -> dist/ with swc, drop dev deps ----
FROM node:20-bookworm-slim AS build
WORKDIR /app

# Exactly the lock file's versions (`npm ci` fails when package.json and the lock disagree).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY . .
RUN npm run build \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund

# ---- runtime stage ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
# Code stays root-owned (read-only for the app); the directory itself is writable by
# `node` in case the app creates runtime files next to it.
RUN chown node:node /app

COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

USER node
# HTTP, and the devices' MQTT endpoint (MQTT_PORT).
EXPOSE 8083 1883
# The api applies pending database migrations on start.
# The worker uses the same image with: node dist/src/worker.js
CMD ["node", "dist/src/index.js"]
