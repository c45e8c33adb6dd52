import { jest } from '@jest/globals';

/**
 * The e2e and cluster projects' default timeout for a test and a hook (jest.config.js runs this
 * after the environment is set up). Jest's 5 s does not fit a test that boots its own server or
 * cluster (a lazy `useTestServer`) on a loaded machine: the boot alone can take seconds. A test
 * that needs longer still says so itself.
 *
 * Here rather than as the projects' `testTimeout`, which jest 30 reads only from the top-level
 * config (it would also apply to the unit projects) and ignores in a project.
 */
export const E2E_TEST_TIMEOUT_MS = 20_000;

jest.setTimeout(E2E_TEST_TIMEOUT_MS);
