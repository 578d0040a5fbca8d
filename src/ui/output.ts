// stdout carries data only (tables, JSON, names); everything for people goes to stderr.
import { color, colorLevel } from './color.ts';
import { write } from '../tty.ts';

export function printJson(value: unknown): void {
  write(1, `${JSON.stringify(value, null, 2)}\n`);
}

export function printLines(lines: string[]): void {
  if (lines.length) write(1, `${lines.join('\n')}\n`);
}

/**
 * A borderless table: columns padded to their widest cell, two spaces apart, header in bold on
 * a terminal. Written here rather than with cli-table3, which produced the same text about six
 * times slower for 200 rows in the compiled executable (and loads its own colour library,
 * which ignores NO_COLOR).
 */
export async function printTable(head: string[], rows: string[][]): Promise<void> {
  const bold = colorLevel() > 0 ? (await color()).bold : (t: string) => t;
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], style = (t: string) => t) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? style(c) : style(c) + ' '.repeat((width[i] ?? 0) - c.length + 2)))
      .join('')
      .trimEnd();
  write(1, `${[line(head, bold), ...rows.map((r) => line(r))].join('\n')}\n`);
}
