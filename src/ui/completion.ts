// Shell completion, generated from the commander tree: `brnet completion bash|zsh` prints a
// static script (no node start-up on every TAB press). Only the names of existing networks
// and endpoints are looked up at completion time, by running `brnet … ls -q`.
//
// Two steps, both pure: completionModel() flattens the tree into one record per command
// path (sub-commands, options, positional arguments and what completes them), then
// bashScript() / zshScript() render that model as case statements.
import type { Command, Option } from 'commander';

/** What a positional argument or an option value completes to. */
export type ValueKind = 'network' | 'endpoint' | 'netns' | 'file' | 'dir' | 'choice' | 'none';

export interface OptionSpec {
  /** The words that name it: long and short form. */
  words: string[];
  description: string;
  takesValue: boolean;
  kind: ValueKind;
  choices: string[];
}

export interface ArgSpec {
  name: string;
  variadic: boolean;
  kind: ValueKind;
  choices: string[];
}

export interface CommandSpec {
  /** Canonical names from the root, space-separated ('' for the program itself). */
  path: string;
  subs: { name: string; aliases: string[]; summary: string }[];
  options: OptionSpec[];
  /** Value-taking option words of this command and its ancestors (global options). */
  valueWords: string[];
  args: ArgSpec[];
}

/**
 * Values commander does not know because the core validates them: keyed by option long
 * name ('--gateway-mode-ipv4') or by '<path> <argument>' ('config set key').
 */
export interface Hints {
  options?: Record<string, readonly string[]>;
  args?: Record<string, readonly string[]>;
}

export interface ScriptMeta {
  name: string;
  version: string;
}

const CREATING_VERBS = new Set(['create', 'add']);
const OBJECT_NOUNS = new Set(['network', 'endpoint']);

/**
 * A positional argument named after an object (network, endpoint, or `name` under that
 * noun) completes to the existing objects, except where the verb creates it.
 */
function argKind(path: string[], argName: string, choices: readonly string[]): ValueKind {
  if (choices.length) return 'choice';
  const noun = path[0] ?? '';
  const creating = CREATING_VERBS.has(path[path.length - 1] ?? '');
  const name = argName.toLowerCase();
  const object = name === 'name' && OBJECT_NOUNS.has(noun) ? noun : name;
  if (object === 'network' || object === 'endpoint') return creating && noun === object ? 'none' : object;
  if (name === 'file') return 'file';
  return 'none';
}

function optionKind(o: Option, choices: readonly string[]): ValueKind {
  if (!(o.required || o.optional)) return 'none';
  if (choices.length) return 'choice';
  const placeholder = /[<[]([^>\].]+)/.exec(o.flags)?.[1]?.toLowerCase() ?? '';
  if (placeholder === 'dir' || placeholder === 'directory') return 'dir';
  if (placeholder === 'file' || placeholder === 'path') return 'file';
  if (o.long === '--netns' || placeholder === 'netns' || placeholder === 'ns') return 'netns';
  return 'none';
}

const isHidden = (c: Command) => Boolean((c as unknown as { _hidden?: boolean })._hidden);

export function completionModel(program: Command, hints: Hints = {}): CommandSpec[] {
  const out: CommandSpec[] = [];
  const walk = (cmd: Command, path: string[], inheritedValueWords: string[]) => {
    const visible = cmd.commands.filter((c) => !isHidden(c));
    const options: OptionSpec[] = cmd.options
      .filter((o) => !o.hidden)
      .map((o) => {
        const choices = o.argChoices ?? (o.long ? hints.options?.[o.long] : undefined) ?? [];
        return {
          words: [o.long, o.short].filter((w): w is string => Boolean(w)),
          description: o.description,
          takesValue: o.required || o.optional,
          kind: optionKind(o, choices),
          choices: [...choices],
        };
      });
    // commander's own help option is not in cmd.options
    if (!options.some((o) => o.words.includes('--help'))) {
      options.push({ words: ['--help', '-h'], description: 'show help', takesValue: false, kind: 'none', choices: [] });
    }
    const valueWords = [...new Set([...inheritedValueWords, ...options.filter((o) => o.takesValue).flatMap((o) => o.words)])];
    out.push({
      path: path.join(' '),
      subs: visible.map((c) => ({ name: c.name(), aliases: c.aliases(), summary: c.summary() || c.description() })),
      options,
      valueWords,
      args: cmd.registeredArguments.map((a) => {
        const choices = a.argChoices ?? hints.args?.[`${path.join(' ')} ${a.name()}`] ?? [];
        return { name: a.name(), variadic: a.variadic, kind: argKind(path, a.name(), choices), choices: [...choices] };
      }),
    });
    for (const c of visible) walk(c, [...path, c.name()], valueWords);
  };
  walk(program, [], []);
  return out;
}

// ---------------------------------------------------------------------------
// rendering helpers

/** Single-quoted for both shells. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const words = (list: readonly string[]) => q(list.join(' '));

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

function aliasCases(model: CommandSpec[]): string[] {
  const out: string[] = [];
  for (const c of model) {
    for (const s of c.subs) for (const a of s.aliases) out.push(`${q(`${c.path}/${a}`)}) w=${s.name} ;;`);
  }
  return out;
}

/** The lines of one `case` branch, the last one ending it. */
const caseBody = (lines: string[]) => (lines.length ? lines : [':']).map((l, i, all) => `            ${l}${i === all.length - 1 ? ' ;;' : ''}`);

/** Positional kinds as one word each, the last one suffixed `...` when variadic. */
const argWords = (c: CommandSpec) => c.args.map((a) => `${a.kind}${a.variadic ? '...' : ''}`);

function header(meta: ScriptMeta, shell: 'bash' | 'zsh', install: string[]): string[] {
  return [
    `# ${shell} completion for ${meta.name} ${meta.version}`,
    `# Generated by \`${meta.name} completion ${shell}\` from the command tree; do not edit.`,
    '# Install:',
    ...install.map((l) => `#   ${l}`),
    `# Network and endpoint names come from \`${meta.name} network ls -q\` and`,
    `# \`${meta.name} endpoint ls -q NETWORK\`; they need read access to the state (root).`,
  ];
}

// ---------------------------------------------------------------------------
// bash

/** The shell function that lists existing names by asking brnet itself (same in bash and zsh). */
function namesFunction(fn: string, name: string, declare: string): string[] {
  return [
    `# Existing names. $1: network|endpoint; $2: the network whose endpoints to list.`,
    `${fn}_names() {`,
    `    ${declare}`,
    '    [[ -n $state_dir ]] && sd=(--state-dir "$state_dir")',
    '    case $1 in',
    `        network) command ${name} "\${sd[@]}" network ls -q 2>/dev/null ;;`,
    `        endpoint) [[ -n $2 ]] && command ${name} "\${sd[@]}" endpoint ls -q "$2" 2>/dev/null ;;`,
    '    esac',
    '}',
  ];
}

/** `<fn>_value`: completes the value of an option or argument; `render` speaks the shell. */
/**
 * `<fn>_spec PATH`: sets what a command path offers, in each shell's own syntax. `subsOpts`
 * gives the shell's words for sub-commands and options (zsh adds descriptions).
 */
function specFunction(
  fn: string,
  model: CommandSpec[],
  init: string,
  subsOpts: (c: CommandSpec) => [string[], string[]],
  assign: (name: string, values: string[]) => string,
): string[] {
  const L = [
    '# What a command path offers: subs (sub-commands), opts (options), vals (options that',
    '# take a value, its own and global), args (one kind per positional argument).',
    `${fn}_spec() {`,
    `    ${init}`,
    '    case $1 in',
  ];
  for (const c of model) {
    const [subs, opts] = subsOpts(c);
    const fields: [string, string[]][] = [
      ['subs', subs],
      ['opts', opts],
      ['vals', c.valueWords],
      ['args', argWords(c)],
    ];
    L.push(`        ${q(c.path)})`, ...caseBody(fields.filter(([, v]) => v.length).map(([k, v]) => assign(k, v))));
  }
  L.push('    esac', '}');
  return L;
}

function valueFunction(fn: string, model: CommandSpec[], render: typeof bashValue): string[] {
  const L = [
    '# Completes the value of option $2 (or of positional argument #N) of command path $1.',
    `${fn}_value() {`,
    '    case "$1 $2" in',
  ];
  for (const v of valueCases(model)) L.push(`        ${casePattern(v.patterns)})`, `            ${render(fn, v.kind, v.choices)} ;;`);
  return L;
}

export function bashScript(model: CommandSpec[], meta: ScriptMeta): string {
  const fn = `_${meta.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const L: string[] = [];
  L.push(
    ...header(meta, 'bash', [
      `${meta.name} completion bash > /usr/share/bash-completion/completions/${meta.name}`,
      `or, for the current shell only: source <(${meta.name} completion bash)`,
    ]),
    '',
    ...namesFunction(fn, meta.name, 'local -a sd=()'),
    '',
    ...specFunction(fn, model, "subs='' opts='' vals='' args=''", (c) => [c.subs.flatMap((s) => [s.name, ...s.aliases]), c.options.flatMap((o) => o.words)], (k, v) => `${k}=${words(v)}`),
    '',
    ...valueFunction(fn, model, bashValue),
  );
  L.push(
    '    esac',
    '}',
    '',
    `${fn}() {`,
    '    local cur=${COMP_WORDS[COMP_CWORD]} cmdpath="" state_dir="" w opt="" prefix="" last="" i skip=0',
    '    local subs opts vals args',
    '    local -a pos=()',
    '    COMPREPLY=()',
    '    # bash splits "--opt=value" (and "key=value") at "=": keep such words together.',
    '    if [[ $cur == = ]]; then',
    '        cur="" opt=${COMP_WORDS[COMP_CWORD-1]}',
    '    elif [[ ${COMP_WORDS[COMP_CWORD-1]} == = ]]; then',
    '        opt=${COMP_WORDS[COMP_CWORD-2]}',
    '    elif [[ $cur == --*=* ]]; then',
    '        opt=${cur%%=*} prefix=${cur%%=*}= cur=${cur#*=}',
    '    fi',
    '    for ((i = 1; i < COMP_CWORD; i++)); do',
    '        w=${COMP_WORDS[i]}',
    '        if [[ $w == = ]]; then',
    '            # the word after "=" belongs to the one before it',
    '            ((i++))',
    '            [[ $skip == 1 && $last == --state-dir ]] && state_dir=${COMP_WORDS[i]}',
    '            skip=0',
    '            continue',
    '        fi',
    '        if ((skip)); then',
    '            skip=0',
    '            [[ $last == --state-dir ]] && state_dir=$w',
    '            continue',
    '        fi',
    `        ${fn}_spec "$cmdpath"`,
    '        case $w in',
    '            --*=*)',
    '                [[ ${w%%=*} == --state-dir ]] && state_dir=${w#*=}',
    '                continue ;;',
    '            -*)',
    '                if [[ " $vals " == *" $w "* ]]; then skip=1 last=$w; fi',
    '                continue ;;',
    '        esac',
    '        case "$cmdpath/$w" in',
    ...aliasCases(model).map((l) => `            ${l}`),
    '        esac',
    '        if [[ -z ${pos[*]} && " $subs " == *" $w "* ]]; then',
    '            cmdpath=${cmdpath:+$cmdpath }$w',
    '        else',
    '            pos+=("$w")',
    '        fi',
    '    done',
    `    ${fn}_spec "$cmdpath"`,
    '    if [[ -n $opt ]]; then',
    `        [[ $opt == -* ]] && ${fn}_value "$cmdpath" "$opt"`,
    '        # without "=" in COMP_WORDBREAKS the word to replace is the whole --opt=value',
    '        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")',
    '        return 0',
    '    fi',
    '    if ((skip)); then',
    `        ${fn}_value "$cmdpath" "$last"`,
    '        return 0',
    '    fi',
    '    if [[ $cur == -* ]]; then',
    '        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")',
    '        return 0',
    '    fi',
    '    if [[ -n $subs ]]; then',
    '        mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")',
    '        return 0',
    '    fi',
    '    local -a kinds=($args)',
    '    local n=${#pos[@]} kind=""',
    '    if ((n < ${#kinds[@]})); then',
    '        kind=${kinds[n]}',
    '    elif ((${#kinds[@]})) && [[ ${kinds[-1]} == *... ]]; then',
    '        kind=${kinds[-1]} n=$((${#kinds[@]} - 1))',
    '    fi',
    '    case ${kind%...} in',
    `        network) mapfile -t COMPREPLY < <(compgen -W "$(${fn}_names network)" -- "$cur") ;;`,
    `        endpoint) mapfile -t COMPREPLY < <(compgen -W "$(${fn}_names endpoint "\${pos[0]}")" -- "$cur") ;;`,
    `        file) ${bashValue(fn, 'file', [])} ;;`,
    `        choice) ${fn}_value "$cmdpath" "#$n" ;;`,
    '    esac',
    '    return 0',
    '}',
    '',
    `complete -F ${fn} ${meta.name}`,
  );
  return `${L.join('\n')}\n`;
}

function bashValue(fn: string, kind: ValueKind, choices: string[]): string {
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
      return `mapfile -t COMPREPLY < <(compgen -W "$(${fn}_names ${kind})" -- "$cur")`;
    default:
      return ':';
  }
}

// ---------------------------------------------------------------------------
// zsh

/** `name:description` for _describe; colons in the name are escaped. */
const described = (name: string, description: string) => q(`${name.replace(/:/g, '\\:')}:${description.replace(/\s+/g, ' ')}`);

export function zshScript(model: CommandSpec[], meta: ScriptMeta): string {
  const fn = `_${meta.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const L: string[] = [];
  L.push(
    `#compdef ${meta.name}`,
    ...header(meta, 'zsh', [
      `${meta.name} completion zsh > /usr/local/share/zsh/site-functions/_${meta.name}   (then: compinit)`,
      `or, for the current shell only (after compinit): source <(${meta.name} completion zsh)`,
    ]),
    '',
    ...namesFunction(fn, meta.name, 'local -a sd'),
    '',
    ...specFunction(
      fn,
      model,
      'subs=() opts=() vals=() args=()',
      (c) => [
        c.subs.flatMap((s) => [s.name, ...s.aliases].map((n) => described(n, s.summary))),
        c.options.flatMap((o) => o.words.map((w) => described(w, o.description))),
      ],
      (k, v) => `${k}=(${v.join(' ')})`,
    ),
    '',
    ...valueFunction(fn, model, zshValue),
  );
  L.push(
    '    esac',
    '}',
    '',
    `${fn}() {`,
    '    local cmdpath="" state_dir="" w last="" i skip=0 cur=${words[CURRENT]}',
    '    local -a subs opts vals args pos',
    '    for ((i = 2; i < CURRENT; i++)); do',
    '        w=${words[i]}',
    '        if ((skip)); then',
    '            skip=0',
    '            [[ $last == --state-dir ]] && state_dir=$w',
    '            continue',
    '        fi',
    `        ${fn}_spec "$cmdpath"`,
    '        case $w in',
    '            --*=*) [[ ${w%%=*} == --state-dir ]] && state_dir=${w#*=}; continue ;;',
    '            -*) if ((${vals[(Ie)$w]})); then skip=1 last=$w; fi; continue ;;',
    '        esac',
    '        case "$cmdpath/$w" in',
    ...aliasCases(model).map((l) => `            ${l}`),
    '        esac',
    '        if ((${#pos} == 0)) && ((${subs[(I)$w:*]})); then',
    '            cmdpath=${cmdpath:+$cmdpath }$w',
    '        else',
    '            pos+=("$w")',
    '        fi',
    '    done',
    `    ${fn}_spec "$cmdpath"`,
    '    if ((skip)); then',
    `        ${fn}_value "$cmdpath" "$last"`,
    '        return',
    '    fi',
    '    if [[ $cur == --*=* ]]; then',
    "        compset -P '*='",
    `        ${fn}_value "$cmdpath" "\${cur%%=*}"`,
    '        return',
    '    fi',
    '    if [[ $cur == -* ]]; then',
    "        _describe -t options 'option' opts",
    '        return',
    '    fi',
    '    if ((${#subs})); then',
    "        _describe -t commands 'command' subs",
    '        return',
    '    fi',
    '    local n=$((${#pos} + 1)) kind=""',
    '    if ((n <= ${#args})); then',
    '        kind=${args[n]}',
    '    elif [[ ${args[-1]-} == *... ]]; then',
    '        kind=${args[-1]} n=${#args}',
    '    fi',
    '    case ${kind%...} in',
    `        network) compadd -- \${(f)"$(${fn}_names network)"} ;;`,
    `        endpoint) compadd -- \${(f)"$(${fn}_names endpoint "\${pos[1]}")"} ;;`,
    '        file) _files ;;',
    `        choice) ${fn}_value "$cmdpath" "#$((n - 1))" ;;`,
    '    esac',
    '}',
    '',
    '# Autoloaded from $fpath, this file is the body of the function: run it. Sourced: register.',
    'if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then',
    `    ${fn} "$@"`,
    'else',
    `    compdef ${fn} ${meta.name}`,
    'fi',
  );
  return `${L.join('\n')}\n`;
}

function zshValue(fn: string, kind: ValueKind, choices: string[]): string {
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
      return `compadd -- \${(f)"$(${fn}_names ${kind})"}`;
    default:
      return ':';
  }
}
