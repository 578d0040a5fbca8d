// What the command line says before commander reads it: `help NOUN VERB`, and the verbs of
// `docker network` that brnet spells otherwise, answered with brnet's own.
import { BrnetError, invalid } from '../errors.ts';

/** Indexes of the words of args that are not options (nor the value of --state-dir). */
function words(args: string[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (a === '--state-dir') i++;
      continue;
    }
    out.push(i);
  }
  return out;
}

/**
 * `brnet help NOUN VERB` as `brnet NOUN VERB --help`: commander's help command looks one
 * level down only, and prints the noun's help for `help network create`.
 */
export function helpAsFlag(args: string[]): string[] {
  const w = words(args);
  if (w.length < 2 || args[w[0]!] !== 'help') return args;
  const first = w[0]!;
  return [...args.slice(0, first), ...args.slice(first + 1), '--help'];
}

/** The command path of `brnet help NOUN VERB…`, or null when that is not what args say. */
export function helpPath(args: string[]): string[] | null {
  const w = words(args).map((i) => args[i]!);
  return w.length >= 2 && w[0] === 'help' ? w.slice(1) : null;
}

/** docker network verbs brnet does not have, and what to type instead. */
const ELSEWHERE: Record<string, [string, string]> = {
  'network connect': ['brnet attaches a namespace, not a container, to a network', 'brnet endpoint add NETWORK ENDPOINT --netns NS'],
  'network disconnect': ['brnet detaches an endpoint, not a container, from a network', 'brnet endpoint rm NETWORK ENDPOINT'],
};
const SHELLS = ['bash', 'zsh'];

/** A usage error (2) for a habit from elsewhere, before commander's generic one; else null. */
export function habitError(args: string[]): BrnetError | null {
  const [a, b] = words(args).map((i) => args[i]!);
  if (a === undefined || b === undefined || args.includes('--help') || args.includes('-h')) return null;
  const other = ELSEWHERE[`${a} ${b}`];
  if (other) return invalid(`there is no \`brnet ${a} ${b}\`: ${other[0]}`, `use: ${other[1]}`);
  if (a === 'completion' && !SHELLS.includes(b)) {
    return invalid(`no completion script for ${b}: brnet completes bash or zsh`, 'brnet completion bash, or brnet completion zsh');
  }
  return null;
}
