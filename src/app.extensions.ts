import type { AppModuleOptions } from './app.module.js';

/**
 * Your own modules (actions, hooks, lifecycle listeners), loaded into the server by main.ts.
 * Wiring one is one line here; see docs/extending.md. For example:
 *
 *   import { AuditLogModule } from './audit-log/audit-log.module.js';
 *   ...
 *   AuditLogModule.forRoot({ file: '/var/log/gallery/audit.jsonl' }),
 */
export const EXTENSION_MODULES: NonNullable<AppModuleOptions['imports']> = [];
