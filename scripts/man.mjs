// Filter for marked-man's roff output (stdin -> stdout), used by `npm run man`:
//   marked-man … man/brnet.1.md > TMPFILE && node scripts/man.mjs TMPFILE > man/brnet.1
// (through a file, which it removes: marked-man exits with output still unwritten when a pipe
// is full, which cut the page at 64 KiB once it grew past that)
// It adds what marked-man lacks and the page relies on:
// - definition lists: a list item whose first line ends in ':' ("* `--subnet` _CIDR_:" and an
//   indented description) becomes a tagged paragraph (.TP), as options are shown in man pages;
// - HTML entities for quotes in code spans (marked's escaping), turned back into characters;
// - the `'\" t` first line that tells man(1) to run tbl(1) for the tables, and tables whose
//   last column takes the rest of the line instead of every column being stretched.
// It refuses input that is not a man page, so a failing marked-man cannot leave an empty page.
import { readFileSync, rmSync } from 'node:fs';

const input = process.argv[2];
const roff = input ? readFileSync(input, 'utf8') : readFileSync(0, 'utf8');
if (input) rmSync(input, { force: true });
if (!roff.startsWith('.TH ')) {
  process.stderr.write('man.mjs: the input is not a man page (did marked-man fail?)\n');
  process.exit(1);
}

const out = roff
  // ".IP \(bu 2\nTERM:\nDESCRIPTION" -> ".TP\nTERM\nDESCRIPTION"
  .replace(/^\.IP \\\(bu 2\n(.*):\n(?:\.br\n)?/gm, '.TP\n$1\n')
  // a list made only of tagged paragraphs needs no extra indentation around it
  .replace(/^\n?\.RS 1\n(\.TP\n[\s\S]*?)\n\.RE\n/gm, (m, body) => (/^\.IP /m.test(body) ? m : `${body}\n`))
  // marked escapes quotes in code spans as HTML entities, which marked-man leaves alone
  .replace(/&quot;/g, '"')
  .replace(/&#39;/g, "\\(aq")
  // the last column takes the rest of the line, instead of every column being stretched
  .replace(/^tab\(\|\) expand nowarn box;\n((?:[lrc] )*[lrc])\.$/gm, 'tab(|) nowarn box;\n$1x.')
  // a blank line between a paragraph and the example (or table) next to it
  .replace(/^\.RS 2\n\.nf$/gm, '.sp\n.RS 2\n.nf')
  .replace(/^\.TE$/gm, '.TE\n.sp');

process.stdout.write(`'\\" t\n${out}`);
