// brnet completion bash|zsh: print a completion script generated from the command tree.
import type { Command } from 'commander';
import { CONFIG_KEYS } from '../core/config.ts';
import { GatewayMode } from '../state/schema.ts';
import { type Hints, completionModel } from '../ui/completion.ts';
import { bashScript, zshScript } from '../ui/completion/scripts.ts';
import { write } from '../tty.ts';

/** Values the core validates (so commander does not know them) but a shell can offer. */
export const HINTS: Hints = {
  options: { '--gateway-mode-ipv4': GatewayMode.options, '--gateway-mode-ipv6': GatewayMode.options },
  args: { 'config set key': CONFIG_KEYS },
};

export function completionScript(shell: string, program: Command, version: string): string {
  const model = completionModel(program, HINTS);
  return shell === 'zsh' ? zshScript(model, version) : bashScript(model, version);
}

export function completion(shell: string, cmd: Command, version: string): void {
  let root = cmd;
  while (root.parent) root = root.parent;
  write(1, completionScript(shell, root, version));
}
