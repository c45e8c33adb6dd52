// Import rules for src/, checked by `npm run lint:deps` (scripts/lint-deps.mjs), which also
// checks for cycles between the top-level folders of src/ (a rule dependency-cruiser's own
// rule language cannot express at that granularity). One-off look: `npx depcruise src`.
//
// Resolution: tsconfig.json, and dependency-cruiser maps our `./x.js` import specifiers to
// `./x.ts` itself. `tsPreCompilationDeps: true` keeps type-only imports (`import type`) in the
// graph, so a cycle made only of type imports is still a cycle.

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'A file must not reach itself through its imports (type-only imports included). ' +
        'Break the cycle by moving the shared piece to a file both sides import.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-socket-types-in-domain',
      severity: 'error',
      comment:
        'rooms, state and users must not know about sockets or streams: the socket types ' +
        '(ws, node:net, node:stream, node:http) stay on the gateway/bus side.',
      from: { path: '^src/(rooms|state|users)/' },
      to: {
        path: [
          '^(node:)?(net|http|stream)$',
          '^(node:)?stream/',
          '^ws$',
          '(^|/)node_modules/(@types/)?ws/',
        ],
      },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import that cannot be resolved would hide its edges from the rules above ' +
        '(e.g. a moved file): fix the import, or this check sees less than it should.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|dist-bench)/' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
