import { defineConfig } from 'vitest/config';

// Two projects: `unit` (tests beside the code in libs/*/src and services/*/src: no other process,
// seconds) and `integration` (services/*/test in-process servers and test/ multi-process clusters).
// `npm test` runs both; `npm run test:unit` / `npm run test:integration` run one.
export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Integration tests start real processes; each bounds its own waits with deadlines.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run test files two at a time so multi-process clusters do not starve each other.
    maxWorkers: 2,
    fileParallelism: true,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: ['libs/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['services/*/test/**/*.test.ts', 'test/**/*.test.ts'] } },
    ],
  },
});
