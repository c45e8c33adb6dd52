// `npm run lint:deps`: import rules for src/, in one pass of dependency-cruiser.
//
// 1. The rules in .dependency-cruiser.mjs (no-circular between files, type-only imports
//    included; no ws / node:net / node:stream / node:http under src/rooms, src/state,
//    src/users; no unresolvable import).
// 2. No cycle between the top-level folders of src/: every file is counted as its folder
//    (src/users/a.ts and src/users/x/b.ts are both "src/users"; a file right under src/ is
//    its own node), and any group of folders that reach each other is an error, e.g.
//    src/users -> src/bus -> src/users, even when no single file is part of a cycle.
//    Spec files are left out of this part (they are still in part 1).
//    dependency-cruiser's own folder rules work on every folder level (src/gateway/dto is a
//    folder of its own there), so this part is done here over the cruise result.
//
// Exit status 1 when either finds something.
import { cruise, format } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const ROOT = 'src';
const options = await extractDepcruiseOptions('./.dependency-cruiser.mjs');
const tsConfig = extractTSConfig(options.tsConfig.fileName);
const cruised = await cruise([ROOT], { ...options, outputType: 'json' }, {}, { tsConfig });
const result = JSON.parse(cruised.output);

// 1. The file-level rules, reported as `depcruise src` would.
const fileRules = await format(result, { outputType: 'err-long' });
process.stdout.write(fileRules.output);
let failed = fileRules.exitCode > 0;

// 2. Cycles between top-level folders.
const folderOf = (file) => {
  const parts = file.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : file;
};
/** @type {Map<string, Map<string, string[]>>} folder -> folder -> the file edges behind it */
const graph = new Map();
for (const mod of result.modules) {
  // A spec wires the folders it tests together (a service with the delivery it reports to) and
  // nothing imports a spec, so its imports are no dependency of one folder on another.
  if (!mod.source.startsWith(`${ROOT}/`) || mod.source.endsWith('.spec.ts')) {
    continue;
  }
  const from = folderOf(mod.source);
  if (!graph.has(from)) {
    graph.set(from, new Map());
  }
  for (const dep of mod.dependencies) {
    const to = folderOf(dep.resolved);
    if (!dep.resolved.startsWith(`${ROOT}/`) || to === from) {
      continue;
    }
    const edges = graph.get(from);
    if (!edges.has(to)) {
      edges.set(to, []);
    }
    const typeOnly = dep.dependencyTypes.includes('type-only') ? ' (type-only)' : '';
    edges.get(to).push(`${mod.source} → ${dep.resolved}${typeOnly}`);
  }
}

// Tarjan's strongly connected components: each component of more than one folder is a cycle.
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
const visit = (node) => {
  index.set(node, index.size);
  low.set(node, index.get(node));
  stack.push(node);
  onStack.add(node);
  for (const next of graph.get(node)?.keys() ?? []) {
    if (!index.has(next)) {
      visit(next);
      low.set(node, Math.min(low.get(node), low.get(next)));
    } else if (onStack.has(next)) {
      low.set(node, Math.min(low.get(node), index.get(next)));
    }
  }
  if (low.get(node) === index.get(node)) {
    const component = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) {
      components.push(component.sort());
    }
  }
};
for (const node of [...graph.keys()].sort()) {
  if (!index.has(node)) {
    visit(node);
  }
}

const SHOWN = 10;
for (const component of components) {
  failed = true;
  const members = new Set(component);
  console.log(`\n  error no-folder-cycle: ${component.join(', ')} depend on each other`);
  for (const from of component) {
    for (const [to, edges] of [...graph.get(from)].sort()) {
      if (!members.has(to)) {
        continue;
      }
      console.log(`    ${from} → ${to}: ${edges.length} import(s)`);
      for (const edge of edges.slice(0, SHOWN)) {
        console.log(`      ${edge}`);
      }
      if (edges.length > SHOWN) {
        console.log(`      … and ${edges.length - SHOWN} more`);
      }
    }
  }
}
console.log(
  components.length
    ? `\nx ${components.length} cycle(s) between top-level folders of ${ROOT}/.`
    : `✔ no cycle between top-level folders of ${ROOT}/ (${graph.size} folders/files).`,
);
process.exitCode = failed ? 1 : 0;
