# One image for every role: the services share libs/ and node_modules, so one build serves all and
# a release is one artifact to scan and sign; the role is the command (see deploy/k8s), the same
# entry points `npm start` runs (services/<role>/dist/main.js).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY libs libs
COPY services services
COPY test/package.json test/tsconfig.json test/
COPY test/harness test/harness
COPY bench/package.json bench/
COPY proto proto
COPY scripts scripts
RUN npm ci --no-audit --no-fund && npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY libs/proto/package.json libs/proto/
COPY libs/common/package.json libs/common/
COPY services/metadata/package.json services/metadata/
COPY services/broker/package.json services/broker/
COPY services/group-coordinator/package.json services/group-coordinator/
COPY services/schema-registry/package.json services/schema-registry/
COPY libs/client/package.json libs/client/
COPY libs/cli/package.json libs/cli/
COPY libs/streams/package.json libs/streams/
COPY test/package.json test/
COPY bench/package.json bench/
RUN npm ci --omit=dev --no-audit --no-fund --workspace libs/proto --workspace libs/common --workspace services/metadata --workspace services/broker --workspace services/group-coordinator --workspace services/schema-registry --workspace libs/client --workspace libs/cli && npm cache clean --force
COPY --from=build /app/libs/proto/dist libs/proto/dist
COPY --from=build /app/libs/common/dist libs/common/dist
COPY --from=build /app/services/metadata/dist services/metadata/dist
COPY --from=build /app/services/broker/dist services/broker/dist
COPY --from=build /app/services/group-coordinator/dist services/group-coordinator/dist
COPY --from=build /app/services/schema-registry/dist services/schema-registry/dist
COPY --from=build /app/libs/client/dist libs/client/dist
COPY --from=build /app/libs/cli/dist libs/cli/dist
USER node
EXPOSE 9090 9092 9095 9096 8081
CMD ["node", "services/metadata/dist/main.js"]
