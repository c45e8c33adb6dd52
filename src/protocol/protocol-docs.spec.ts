// docs/protocol.md is what client authors read; src/protocol/protocol.ts is what the server speaks.
// This spec keeps the two in step: each name table of the doc must list exactly the names of the
// matching export, so a name added, renamed or removed on one side fails until the other follows.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ClientAction, CloseCode, CloseReason, ErrorCode, ServerEvent } from './protocol.js';

const DOC = 'docs/protocol.md';
const SOURCE = 'src/protocol/protocol.ts';

const doc = readFileSync(join(process.cwd(), DOC), 'utf8');

/** The lines under a heading, up to the next heading of any level (code blocks skipped over). */
function section(heading: string): string[] {
  const lines = doc.split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) {
    throw new Error(`${DOC} has no heading "${heading}"`);
  }
  const body: string[] = [];
  let inFence = false;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('```')) {
      inFence = !inFence;
    }
    if (!inFence && /^#{1,6} /.test(line)) {
      break;
    }
    body.push(line);
  }
  return body;
}

/** The body rows of the first table in `lines`, as trimmed cells (`\|` is a pipe in a cell). */
function tableRows(lines: string[], heading: string): string[][] {
  const start = lines.findIndex((line) => line.startsWith('|'));
  if (start < 0) {
    throw new Error(`${DOC}: no table under "${heading}"`);
  }
  const end = lines.findIndex((line, i) => i > start && !line.startsWith('|'));
  const rows = lines.slice(start, end < 0 ? undefined : end).map((line) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim()),
  );
  return rows.slice(2); // the header and the |---| line
}

/** The name in a first cell such as `join_room`; null when the cell is anything else. */
function codeName(cell: string): string | null {
  return /^`([^`]+)`$/.exec(cell)?.[1] ?? null;
}

/** Every `name` in backticks in a cell. */
function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]);
}

/**
 * The first column of the table under `heading`, held against `expected` both ways. Each problem
 * is one readable line, so a failure names the entries at fault.
 */
function compareFirstColumn(
  heading: string,
  expected: readonly string[],
  source: string,
  options: { allowRepeats?: boolean; plainNumbers?: boolean } = {},
): string[] {
  const problems: string[] = [];
  const listed: string[] = [];
  for (const row of tableRows(section(heading), heading)) {
    const name = options.plainNumbers ? /^`?(\d+)`?$/.exec(row[0])?.[1] : codeName(row[0]);
    if (name === undefined || name === null) {
      const wanted = options.plainNumbers ? 'a number' : 'one name in backticks';
      problems.push(`"${heading}": first cell "${row[0]}" is not ${wanted}`);
      continue;
    }
    if (listed.includes(name) && !options.allowRepeats) {
      problems.push(`"${heading}": ${name} has more than one row`);
    }
    listed.push(name);
  }
  for (const name of expected) {
    if (!listed.includes(name)) {
      problems.push(`${name} is in ${source} but has no row under "${heading}" in ${DOC}`);
    }
  }
  for (const name of new Set(listed)) {
    if (!expected.includes(name)) {
      problems.push(`${name} has a row under "${heading}" in ${DOC} but is not in ${source}`);
    }
  }
  return problems;
}

/** The field names of a payload written as `{requestId?, roomId, reason: "a" \| "b"}`. */
function documentedFields(cell: string): string[] {
  const inner = /^`\{(.*)\}`$/.exec(cell)?.[1];
  if (inner === undefined) {
    return [`(not a payload: ${cell})`];
  }
  const fields: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of inner) {
    if (char === '{' || char === '[') {
      depth++;
    } else if (char === '}' || char === ']') {
      depth--;
    }
    if (char === ',' && depth === 0) {
      fields.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  fields.push(current);
  return fields.map((field) => /^\s*(\w+\??)/.exec(field)?.[1] ?? `(unreadable: ${field.trim()})`);
}

/**
 * The fields of each ServerEventMap entry, read from the source (types are gone at run time):
 * `name` or `name?`. An entry may be a literal type or an interface of the same file.
 */
function serverEventMapFields(): Map<string, string[]> {
  const text = readFileSync(join(process.cwd(), SOURCE), 'utf8');
  const file = ts.createSourceFile(SOURCE, text, ts.ScriptTarget.Latest);
  const interfaces = new Map<string, ts.InterfaceDeclaration>();
  file.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node)) {
      interfaces.set(node.name.text, node);
    }
  });
  const membersOf = (members: ts.NodeArray<ts.TypeElement>): string[] =>
    members
      .filter(ts.isPropertySignature)
      .map((member) => member.name.getText(file) + (member.questionToken ? '?' : ''));
  const map = interfaces.get('ServerEventMap');
  if (!map) {
    throw new Error(`${SOURCE} has no interface ServerEventMap`);
  }
  const fields = new Map<string, string[]>();
  for (const member of map.members.filter(ts.isPropertySignature)) {
    const type = member.type;
    let names: string[] = [`(a type this spec cannot read: ${type?.getText(file)})`];
    if (type && ts.isTypeLiteralNode(type)) {
      names = membersOf(type.members);
    } else if (type && ts.isTypeReferenceNode(type)) {
      const declaration = interfaces.get(type.typeName.getText(file));
      if (declaration) {
        names = membersOf(declaration.members);
      }
    }
    fields.set(member.name.getText(file), names);
  }
  return fields;
}

/**
 * Fields the type allows that the server never sends, so the doc leaves them out on purpose.
 * `kicked` goes to the kicked member, who did not send the request, so it never has a requestId.
 */
const TYPED_BUT_NEVER_SENT: Record<string, string[]> = { kicked: ['requestId?'] };

/**
 * Fields the type leaves optional that the server always sends, so the doc lists them as
 * required. `message`'s roomId: optional for the SDK, which takes servers that left it out.
 */
const TYPED_OPTIONAL_BUT_ALWAYS_SENT: Record<string, string[]> = { message: ['roomId?'] };

describe('docs/protocol.md matches src/protocol/protocol.ts', () => {
  it('"## Actions" has one row per ClientAction, and no other', () => {
    expect(compareFirstColumn('## Actions', Object.values(ClientAction), 'ClientAction')).toEqual(
      [],
    );
  });

  it('"## Actions" has a "### `action`" section per ClientAction, and no other', () => {
    const actions: readonly string[] = Object.values(ClientAction);
    const lines = doc.split('\n');
    const start = lines.indexOf('## Actions');
    const end = lines.findIndex((line, i) => i > start && line.startsWith('## '));
    const headings = lines
      .slice(start, end)
      .filter((line) => line.startsWith('### '))
      .map((line) => codeName(line.slice(4).trim()) ?? line);
    const problems = [
      ...actions
        .filter((action) => !headings.includes(action))
        .map((action) => `${action} has no "### \`${action}\`" section under "## Actions"`),
      ...headings
        .filter((heading) => !actions.includes(heading))
        .map((heading) => `"## Actions" has a section "${heading}" that is not a ClientAction`),
    ];
    expect(problems).toEqual([]);
  });

  it('the replies named in "## Actions" are ServerEvents', () => {
    const events: readonly string[] = Object.values(ServerEvent);
    const problems = tableRows(section('## Actions'), '## Actions').flatMap(([action, ...rest]) =>
      rest
        .flatMap(codeSpans)
        .filter((name) => !events.includes(name))
        .map((name) => `${action}: ${name} is not a ServerEvent`),
    );
    expect(problems).toEqual([]);
  });

  it('"## Events" has one row per ServerEvent, and no other', () => {
    expect(compareFirstColumn('## Events', Object.values(ServerEvent), 'ServerEvent')).toEqual([]);
  });

  it('each payload in "## Events" has the fields of ServerEventMap', () => {
    const typed = serverEventMapFields();
    const problems: string[] = [];
    for (const [cell, data] of tableRows(section('## Events'), '## Events')) {
      const event = codeName(cell) ?? cell;
      const expected = (typed.get(event) ?? [])
        .filter((field) => !TYPED_BUT_NEVER_SENT[event]?.includes(field))
        .map((field) =>
          TYPED_OPTIONAL_BUT_ALWAYS_SENT[event]?.includes(field) ? field.slice(0, -1) : field,
        );
      const documented = documentedFields(data);
      for (const field of expected.filter((field) => !documented.includes(field))) {
        problems.push(`${event}: ${field} is in ServerEventMap but not in the doc's data column`);
      }
      for (const field of documented.filter((field) => !expected.includes(field))) {
        problems.push(`${event}: ${field} is in the doc's data column but not in ServerEventMap`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('"## Error codes" has one row per ErrorCode, and no other', () => {
    expect(compareFirstColumn('## Error codes', Object.values(ErrorCode), 'ErrorCode')).toEqual([]);
  });

  it('"## Close codes" has a row per CloseCode, and no other', () => {
    const codes = Object.values(CloseCode).map(String);
    const problems = compareFirstColumn('## Close codes', codes, 'CloseCode', {
      allowRepeats: true,
      plainNumbers: true,
    });
    expect(problems).toEqual([]);
  });

  it('the reasons in "## Close codes" are the CloseReasons, each once', () => {
    const reasons: readonly string[] = Object.values(CloseReason);
    const listed = tableRows(section('## Close codes'), '## Close codes').flatMap((row) =>
      codeSpans(row[1]),
    );
    const problems = [
      ...reasons
        .filter((reason) => !listed.includes(reason))
        .map((reason) => `CloseReason "${reason}" is not in the reason column of "## Close codes"`),
      ...listed
        .filter((reason) => !reasons.includes(reason))
        .map((reason) => `"## Close codes" gives the reason "${reason}", not a CloseReason`),
      ...listed
        .filter((reason, i) => listed.indexOf(reason) !== i)
        .map((reason) => `"## Close codes" gives the reason "${reason}" more than once`),
    ];
    expect(problems).toEqual([]);
  });
});
