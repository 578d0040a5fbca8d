// --format: the part of Go's text/template that Docker users write on the command line,
// and nothing more. Written here rather than taken from a library: the JavaScript ports of Go
// templates are unmaintained or pull in a whole template language, while what people type
// is `{{.Name}}`, `{{json .}}` and `table` with `\t` between columns.
//
// The subset: literal text; `{{.Field}}`; `{{json .}}` (the whole object as --json shows it,
// on one line); `{{json .Field}}`; spaces inside the braces; `\t` and `\n` in the text
// stand for a tab and a newline; a leading `table` prints a header line and aligns the
// columns separated by `\t` (as Docker's tabwriter: at least 10 wide, 3 spaces apart);
// `json` alone is `{{json .}}`. Anything else is bad input (2), never silently printed.
import { invalid } from '../errors.ts';

export interface Field<T> {
  header: string;
  get(item: T): string | number | boolean;
}
export type Fields<T> = Record<string, Field<T>>;

type Segment = { text: string } | { field: string; json: boolean } | { whole: true };

export interface Template<T> {
  table: boolean;
  /** The template prints the whole object somewhere ({{json .}}). */
  needsWhole: boolean;
  render(items: T[], whole: (item: T) => unknown): string;
}

const ACTION = /\{\{\s*(.*?)\s*\}\}/g;
const SUBSET = 'supported: {{.Field}}, {{json .}}, {{json .Field}}, a leading `table`, `json`';

/** The template of --format, or null for `table` alone (the default table). */
export function parseTemplate<T>(format: string, fields: Fields<T>): Template<T> | null {
  let text = format === 'json' ? '{{json .}}' : format;
  const table = /^table(\s|$)/.test(text);
  if (table) text = text.slice(5).trim();
  if (table && !text) return null;
  text = text.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const segments: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(ACTION)) {
    if (m.index > last) segments.push({ text: text.slice(last, m.index) });
    segments.push(action(m[1]!, fields));
    last = m.index + m[0].length;
  }
  if (last < text.length) segments.push({ text: text.slice(last) });
  for (const s of segments) {
    if ('text' in s && /\{\{|\}\}/.test(s.text)) throw invalid(`--format: unbalanced braces in ${JSON.stringify(format)}`, SUBSET);
  }
  return {
    table,
    needsWhole: segments.some((s) => 'whole' in s),
    render(items, whole) {
      const line = (item: T) =>
        segments
          .map((s) => {
            if ('text' in s) return s.text;
            if ('whole' in s) return JSON.stringify(whole(item));
            const v = fields[s.field]!.get(item);
            return s.json ? JSON.stringify(v) : String(v);
          })
          .join('');
      const lines = items.map(line);
      if (!table) return lines.map((l) => `${l}\n`).join('');
      const head = segments.map((s) => ('text' in s ? s.text : 'whole' in s ? 'JSON' : fields[s.field]!.header)).join('');
      return align([head, ...lines]);
    },
  };
}

function action(body: string, fields: Fields<unknown>): Segment {
  const m = /^(json\s+)?\.([A-Za-z0-9_]*)$/.exec(body);
  if (!m) throw invalid(`--format: {{${body}}} is not supported`, SUBSET);
  const [, json, name] = m;
  if (!name) {
    if (json) return { whole: true };
    throw invalid('--format: {{.}} is not supported: use {{json .}}', SUBSET);
  }
  if (!Object.hasOwn(fields, name)) throw invalid(`--format: no field .${name}`, `the fields: ${Object.keys(fields).map((f) => `.${f}`).join(' ')}`);
  return { field: name, json: Boolean(json) };
}

/** Cells ended by a tab are padded to their column's widest plus 3, at least 10 (tabwriter). */
function align(lines: string[]): string {
  const rows = lines.flatMap((l) => l.split('\n')).map((l) => l.split('\t'));
  const width: number[] = [];
  for (const r of rows) r.slice(0, -1).forEach((c, i) => (width[i] = Math.max(width[i] ?? 10, c.length + 3)));
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(width[i]!) : c)).join('').trimEnd()).join('\n') + '\n';
}
