// stdout carries data only (tables, JSON, names); everything for people goes to stderr.
import { color } from './color.ts';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLines(lines: string[]): void {
  if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
}

export async function printTable(head: string[], rows: string[][]): Promise<void> {
  const { default: Table } = await import('cli-table3');
  const c = await color();
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 2 },
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
      'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
    },
  });
  for (const r of rows) t.push(r);
  process.stdout.write(`${t.toString().split('\n').map((l) => l.trimEnd()).join('\n')}\n`);
}
