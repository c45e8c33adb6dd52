// Native ESM jest (Nest 12 ships ESM only): ts-jest compiles TypeScript as ESM and the mapper
// strips the `.js` that nodenext requires in relative imports.
const esmTsJest = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testEnvironment: 'node',
};

// The end-to-end projects' default timeout for tests and hooks (20 s, see the file): a test that
// boots its own server or cluster counts the boot against it. Jest reads `testTimeout` only from
// the top-level config, never a project's, hence a setup file.
const e2eTimeout = { setupFilesAfterEnv: ['<rootDir>/test/support/e2e-timeout.ts'] };

export default {
  // Jest's default on a 2-core machine is one worker, in band. The suite mostly waits on sockets
  // and timers, so two workers halve its time (481 s -> 233 s here, 246 s with a third process
  // keeping a core busy) without making the tests race each other.
  maxWorkers: 2,
  projects: [
    { ...esmTsJest, displayName: 'unit', rootDir: 'src', testMatch: ['**/*.spec.ts'] },
    {
      // The client SDK (client/), type-checked with its own tsconfig (DOM lib, no Node types).
      ...esmTsJest,
      displayName: 'client',
      rootDir: 'client',
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      transform: {
        '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'client/tsconfig.json' }],
      },
    },
    // The bench's own helpers (bench/); the bench as a whole runs in CI's smokes.
    { ...esmTsJest, displayName: 'bench', rootDir: 'bench', testMatch: ['**/*.spec.ts'] },
    {
      ...esmTsJest,
      ...e2eTimeout,
      displayName: 'e2e',
      rootDir: '.',
      testMatch: ['<rootDir>/test/*.e2e-spec.ts'],
    },
    {
      // /demo and /admin in Chromium (Debian's /usr/bin/chromium via playwright-core), against
      // an in-process server. Needs `npm run client:build` first, for the SDK the demo loads.
      ...esmTsJest,
      displayName: 'browser',
      rootDir: '.',
      testMatch: ['<rootDir>/test/browser/*.browser-spec.ts'],
    },
    {
      // The e2e suite again, against three instances sharing a real Redis (TEST_REDIS_URL, by
      // default redis://127.0.0.1:6379): useTestServer spreads each test's clients round-robin
      // over them (test/support/cluster.ts). Plus the cluster's own tests in test/cluster/.
      ...esmTsJest,
      ...e2eTimeout,
      displayName: 'cluster',
      rootDir: '.',
      globals: { TEST_CLUSTER_INSTANCES: '3' },
      testMatch: ['<rootDir>/test/*.e2e-spec.ts', '<rootDir>/test/cluster/*.e2e-spec.ts'],
      testPathIgnorePatterns: [
        '/node_modules/',
        // Single-instance by nature: reads one server's UsersService (a socket's pending bytes).
        '<rootDir>/test/slow-consumer\\.e2e-spec\\.ts$',
        // Spawns its own server processes and signals them; cluster shutdown is not about this.
        '<rootDir>/test/shutdown\\.e2e-spec\\.ts$',
        // Spawns its own processes and checks DATA_DIR files; test/cluster/ covers Redis + AOF.
        '<rootDir>/test/durability\\.e2e-spec\\.ts$',
        // Spawn their own server processes: a crash must show as a process exit.
        '<rootDir>/test/fuzz\\.e2e-spec\\.ts$',
        '<rootDir>/test/process-guards\\.e2e-spec\\.ts$',
        '<rootDir>/test/log-secrets\\.e2e-spec\\.ts$',
        '<rootDir>/test/json-logs\\.e2e-spec\\.ts$',
      ],
    },
  ],
};
