// Shell completion, generated from the commander tree: `brnet completion bash|zsh` prints a
// static script (no brnet start-up on every TAB press). Only the names of existing networks
// and endpoints are looked up at completion time, by running `brnet … ls -q`.
//
// Two steps, both pure: completionModel() here flattens the tree into one record per command
// path (sub-commands, options, positional arguments and what completes them), then
// completion/scripts.ts renders that model as the case statements of each shell's template.
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
  // endpoint link/unlink name their two endpoints FROM and TO.
  const object = name === 'name' && OBJECT_NOUNS.has(noun) ? noun : noun === 'endpoint' && (name === 'from' || name === 'to') ? 'endpoint' : name;
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
