// The completion scripts: each shell's program is a template of real shell (brnet.bash,
// brnet.zsh) with placeholders, filled here with case branches rendered from the completion
// model. The templates are imported as text so that esbuild and Bun embed them in the
// bundle: an installed brnet has no source tree to read them from.
import type { CommandSpec, ValueKind } from '../completion.ts';
import bashTemplate from './brnet.bash' with { type: 'text' };
import zshTemplate from './brnet.zsh' with { type: 'text' };

/** Single-quoted for both shells. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const words = (list: readonly string[]) => q(list.join(' '));

/**
 * The template without its `#@` note lines, with `@@NAME@@` replaced by values[NAME] and
 * each line `# @@NAME@@` by the lines of values[NAME] at that line's indentation. A
 * placeholder without a value, or a value without a placeholder, throws: a template and
 * this file must not drift apart silently.
 */
function fill(template: string, values: Record<string, string | readonly string[]>): string {
  const used = new Set<string>();
  const take = (name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`completion template: no value for @@${name}@@`);
    used.add(name);
    return v;
  };
  const lines = template
    .split('\n')
    .filter((l) => !l.startsWith('#@'))
    .flatMap((line) => {
      const block = /^(\s*)# @@(\w+)@@$/.exec(line);
      if (block) return [take(block[2]!)].flat().map((l) => block[1] + l);
      return line.replace(/@@(\w+)@@/g, (_, name: string) => {
        const v = take(name);
        if (typeof v !== 'string') throw new Error(`completion template: @@${name}@@ takes a line of its own`);
        return v;
      });
    });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length) throw new Error(`completion template: no placeholder for ${unused.join(', ')}`);
  return lines.join('\n');
}

/** One `case` branch; its last line ends it. */
const branch = (pattern: string, lines: string[]) => [
  `${pattern})`,
  ...(lines.length ? lines : [':']).map((l, i, all) => `    ${l}${i === all.length - 1 ? ' ;;' : ''}`),
];

/** Positional kinds as one word each, the last one suffixed `...` when variadic. */
const argWords = (c: CommandSpec) => c.args.map((a) => `${a.kind}${a.variadic ? '...' : ''}`);

/**
 * The branches of _brnet_spec, in each shell's own syntax. `subsOpts` gives the shell's words
 * for sub-commands and options (zsh adds descriptions).
 */
function specCases(
  model: CommandSpec[],
  subsOpts: (c: CommandSpec) => [string[], string[]],
  assign: (name: string, values: string[]) => string,
): string[] {
  return model.flatMap((c) => {
    const [subs, opts] = subsOpts(c);
    const fields: [string, string[]][] = [
      ['subs', subs],
      ['opts', opts],
      ['vals', c.valueWords],
      ['args', argWords(c)],
    ];
    return branch(q(c.path), fields.filter(([, v]) => v.length).map(([k, v]) => assign(k, v)));
  });
}

/** case patterns that select a value completion: `<path> <option>` or `<path> #<position>`. */
interface ValueCase {
  patterns: string[];
  kind: ValueKind;
  choices: string[];
}

/**
 * The value completions of every option and choice argument, grouped so that an option
 * that completes the same way everywhere (e.g. --state-dir) is one `*' --state-dir'` case.
 */
function valueCases(model: CommandSpec[]): ValueCase[] {
  const byWord = new Map<string, { path: string; kind: ValueKind; choices: string[] }[]>();
  const cases: ValueCase[] = [];
  for (const c of model) {
    for (const o of c.options) {
      if (o.kind === 'none') continue;
      for (const w of o.words) {
        const list = byWord.get(w) ?? [];
        list.push({ path: c.path, kind: o.kind, choices: o.choices });
        byWord.set(w, list);
      }
    }
    c.args.forEach((a, i) => {
      if (a.kind === 'choice') cases.push({ patterns: [`${c.path} #${i}`], kind: 'choice', choices: a.choices });
    });
  }
  const everywhere = (w: string) => model.filter((c) => c.options.some((o) => o.words.includes(w))).length;
  for (const [w, uses] of byWord) {
    const first = uses[0]!;
    const same = uses.every((u) => u.kind === first.kind && u.choices.join() === first.choices.join());
    if (same && uses.length === everywhere(w)) {
      cases.push({ patterns: [`* ${w}`], kind: first.kind, choices: first.choices });
    } else {
      for (const u of uses) cases.push({ patterns: [`${u.path} ${w}`], kind: u.kind, choices: u.choices });
    }
  }
  // merge cases that complete identically
  const merged = new Map<string, ValueCase>();
  for (const v of cases) {
    const key = `${v.kind}:${v.choices.join(' ')}`;
    const m = merged.get(key);
    if (m) m.patterns.push(...v.patterns);
    else merged.set(key, { ...v, patterns: [...v.patterns] });
  }
  return [...merged.values()];
}

/** `'network create'|'network create2'` – a leading `* ` becomes an unquoted glob. */
const casePattern = (patterns: string[]) => patterns.map((p) => (p.startsWith('* ') ? `*${q(p.slice(1))}` : q(p))).join('|');

/** The branches of _brnet_value; `render` speaks the shell. */
const valueBranches = (model: CommandSpec[], render: (kind: ValueKind, choices: string[]) => string) =>
  valueCases(model).flatMap((v) => branch(casePattern(v.patterns), [render(v.kind, v.choices)]));

/** The same in both shells: an alias is read as the sub-command it stands for. */
function aliasCases(model: CommandSpec[]): string[] {
  const out: string[] = [];
  for (const c of model) {
    for (const s of c.subs) for (const a of s.aliases) out.push(`${q(`${c.path}/${a}`)}) w=${s.name} ;;`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// bash

export function bashScript(model: CommandSpec[], version: string): string {
  return fill(bashTemplate, {
    VERSION: version,
    SPEC: specCases(model, (c) => [c.subs.flatMap((s) => [s.name, ...s.aliases]), c.options.flatMap((o) => o.words)], (k, v) => `${k}=${words(v)}`),
    VALUES: valueBranches(model, bashValue),
    ALIASES: aliasCases(model),
  });
}

function bashValue(kind: ValueKind, choices: string[]): string {
  switch (kind) {
    case 'choice':
      return `mapfile -t COMPREPLY < <(compgen -W ${words(choices)} -- "$cur")`;
    case 'dir':
      return 'compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur")';
    case 'file':
      return 'compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur")';
    case 'netns':
      return `mapfile -t COMPREPLY < <(compgen -W "$(ip netns list 2>/dev/null | cut -d' ' -f1)" -- "$cur")`;
    case 'network':
    case 'endpoint':
      return `mapfile -t COMPREPLY < <(compgen -W "$(_brnet_names ${kind})" -- "$cur")`;
    default:
      return ':';
  }
}

// ---------------------------------------------------------------------------
// zsh

/** `name:description` for _describe; colons in the name are escaped. */
const described = (name: string, description: string) => q(`${name.replace(/:/g, '\\:')}:${description.replace(/\s+/g, ' ')}`);

export function zshScript(model: CommandSpec[], version: string): string {
  return fill(zshTemplate, {
    VERSION: version,
    SPEC: specCases(
      model,
      (c) => [
        c.subs.flatMap((s) => [s.name, ...s.aliases].map((n) => described(n, s.summary))),
        c.options.flatMap((o) => o.words.map((w) => described(w, o.description))),
      ],
      (k, v) => `${k}=(${v.join(' ')})`,
    ),
    VALUES: valueBranches(model, zshValue),
    ALIASES: aliasCases(model),
  });
}

function zshValue(kind: ValueKind, choices: string[]): string {
  switch (kind) {
    case 'choice':
      return `compadd -- ${choices.map(q).join(' ')}`;
    case 'dir':
      return '_files -/';
    case 'file':
      return '_files';
    case 'netns':
      return `compadd -- \${\${(f)"$(ip netns list 2>/dev/null)"}%% *}`;
    case 'network':
    case 'endpoint':
      return `compadd -- \${(f)"$(_brnet_names ${kind})"}`;
    default:
      return ':';
  }
}
