import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'libs/*/src/**/*.test.ts',
      'services/*/src/**/*.test.ts',
      'services/*/test/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Integration tests start real processes; each bounds its own waits with deadlines.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run test files two at a time so multi-process clusters do not starve each other.
    maxWorkers: 2,
    fileParallelism: true,
    pool: 'forks',
  },
});
