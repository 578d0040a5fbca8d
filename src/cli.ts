// Every command and option of brnet, declared in one place: the command table. The CLI runs
// it, and `brnet batch` parses its lines with the same table built in batch mode, where a
// mutating command yields its operation instead of running it (see commands/mutation.ts).
// Actions import their module lazily: in the compiled executable, loading everything up front
// makes `network ls` about a third slower (measured).
import { Argument, Command, CommanderError, Help, Option } from 'commander';
import type { Mutation } from './commands/mutation.ts';
import { BrnetError, ExitCode, errorChain, invalid } from './errors.ts';
import type { Ctx } from './core/context.ts';
import type { Operation } from './core/runner.ts';
import { habitError, helpAsFlag, helpPath } from './ui/argv.ts';
import { defaultStateDir } from './net/rootless.ts';
import { disableColor } from './ui/color.ts';
import { write } from './tty.ts';

declare const __BRNET_VERSION__: string;
const VERSION = typeof __BRNET_VERSION__ === 'string' ? __BRNET_VERSION__ : '0.0.0-dev';

const collect = (v: string, prev: string[] = []) => [...prev, v];
// Set from argv in main(): an error before the command's own parse must still honour --json.
let jsonErrors = false;
let helpOnError = '';

function ctxOf(cmd: Command): Ctx {
  const g = cmd.optsWithGlobals() as { stateDir?: string; json?: boolean; quiet?: boolean; dryRun?: boolean; color?: boolean; debug?: boolean };
  if (g.debug) process.env.BRNET_DEBUG = '1'; // read by src/net/exec.ts
  if (g.color === false) disableColor();
  jsonErrors = Boolean(g.json);
  const silent = Boolean(g.json || g.quiet);
  return {
    stateDir: g.stateDir || process.env.BRNET_STATE_DIR || defaultStateDir(),
    dryRun: Boolean(g.dryRun),
    json: Boolean(g.json),
    quiet: Boolean(g.quiet),
    note: (m) => {
      if (!silent) write(2, `${m}\n`);
    },
    warn: (m) => {
      if (!g.json) write(2, `brnet: warning: ${m}\n`);
    },
  };
}

function globalOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('Global Options:')
    .option('--state-dir <dir>', 'state directory (default: /var/lib/brnet, rootless $XDG_RUNTIME_DIR/brnet; env BRNET_STATE_DIR)', undefined)
    .option('--json', 'machine-readable output on stdout')
    .option('-q, --quiet', 'names only for ls; nothing on success otherwise')
    .option('--dry-run', 'print the exact plan and change nothing')
    .option('--no-color', 'no colour (also NO_COLOR, or stdout not a terminal)')
    .option('--debug', 'trace every external command on stderr (env BRNET_DEBUG=1)')
    .optionsGroup('Options:');
}

/** Leaves declare the global options first; their help shows the command's own options first. */
function globalOptionsLast<T extends Command | Option>(this: Help, unsorted: T[], visible: T[], group: (item: T) => string) {
  const groups = Help.prototype.groupItems.call<Help, [T[], T[], (item: T) => string], Map<string, T[]>>(this, unsorted, visible, group);
  const globals = groups.get('Global Options:');
  if (globals && groups.delete('Global Options:')) groups.set('Global Options:', globals);
  return groups;
}

/**
 * How the table is built: to run commands, or (batch) to turn each line into its operation,
 * which `sink` collects; batch lines take no global options (the batch's own apply to all).
 */
interface Mode {
  sink: Operation<unknown>[] | null;
}

/** A leaf command: also accepts the global options after the verb, except in a batch. */
function leaf(mode: Mode, parent: Command, spec: string, summary: string): Command {
  const c = parent.command(spec).summary(summary).description(summary);
  return mode.sink ? c : globalOptions(c);
}

/** The action of a command that changes something: parse into an operation, run it, print. */
function mutating<R>(mode: Mode, load: () => Promise<Mutation<R>>) {
  return async (...a: unknown[]) => {
    const cmd = a.at(-1) as Command;
    const args = a.slice(0, -2);
    const m = await load();
    if (mode.sink) {
      mode.sink.push((await m.operation(args, cmd)) as Operation<unknown>);
      return;
    }
    const ctx = ctxOf(cmd);
    const op = await m.operation(args, cmd);
    const [{ run }, { runWithProgress }] = await Promise.all([import('./core/runner.ts'), import('./ui/progress.ts')]);
    await m.print(ctx, await runWithProgress(ctx, op, run));
  };
}

/** The action of a command that only reads or prints: refused inside a batch. */
function reading(mode: Mode, fn: (...a: any[]) => Promise<void> | void) {
  return (...a: any[]) => {
    if (mode.sink) {
      const cmd = a.at(-1) as Command;
      throw invalid(`\`${cmd.parent?.parent ? `${cmd.parent.name()} ` : ''}${cmd.name()}\` changes nothing and cannot run inside a batch`);
    }
    return fn(...a);
  };
}

export function buildProgram(mode: Mode = { sink: null }): Command {
  const program = new Command('brnet');
  program
    .description('Manage Linux bridge networks, endpoints and published ports, without a daemon')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .showSuggestionAfterError(true)
    // Help shown because of an error (a noun without its verb) is replaced by a one-line
    // usage error in main(); --help itself goes to stdout as usual.
    .configureOutput({ outputError: (str) => usageError(str), writeOut: (str) => write(1, str), writeErr: (str) => void (helpOnError += str) })
    .configureHelp({ groupItems: globalOptionsLast })
    .helpOption('-h, --help', 'show help');
  if (!mode.sink) globalOptions(program); // batch lines take none: the batch's own apply to all
  program.addHelpText(
    'after',
    '\nExamples:\n  brnet network create web\n  brnet endpoint add web app --netns app --create-netns -p 8080:80\n' +
      '  brnet network ls\n  brnet restore\n\n`brnet <command> <verb> --help` (or `brnet help <command> <verb>`) shows every option;\n`man brnet` is the manual.\n',
  );

  const network = program
    .command('network')
    .summary('create, remove, list and inspect networks')
    .description('Manage bridge networks')
    .addHelpText(
      'after',
      '\nA network is named by its name, its ID, or a unique prefix of its ID (4 hex digits or more).\n' +
        '\nExamples:\n  brnet network create web --subnet 10.20.0.0/24\n  brnet network ls\n  brnet network inspect web\n  brnet network rm --force web\n',
    );
  leaf(mode, network, 'create <name>', 'create a network: a bridge, its addresses and its firewall rules')
    .option('--subnet <cidr>', 'subnet in CIDR form; once per family (repeatable; default: the first free subnet of the address pools)', collect)
    .option('--gateway <ip>', 'gateway address inside its subnet (repeatable, one per family; default: the first host address)', collect)
    .option('--ip-range <cidr>', 'endpoints get addresses from this part of the subnet', collect)
    .option('--aux-address <name=ip>', 'reserve an address (repeatable)', collect)
    .option('--ipv6', 'enable IPv6 (a ULA /64 is allocated without an IPv6 --subnet)')
    .option('--no-ipv4', 'IPv6 only (requires --ipv6)')
    .option('--internal', 'no traffic to or from outside the bridge')
    .option('--bridge-name <name>', 'bridge device name (default: br-<first 12 hex digits of the id>)')
    .option('--mtu <n>', 'MTU of the bridge and the endpoints (68-65535, at least 1280 with IPv6; default: 1500)')
    .option('--no-icc', 'endpoints of this network cannot reach each other')
    .option('--no-masquerade', 'no masquerade for traffic leaving the network')
    .addOption(new Option('--gateway-mode-ipv4 <mode>', 'nat, nat-unprotected, routed or isolated (only with --internal) (default: nat)'))
    .addOption(new Option('--gateway-mode-ipv6 <mode>', 'nat, nat-unprotected, routed or isolated (only with --internal) (default: nat)'))
    .option('--inhibit-ipv4', 'do not put the IPv4 gateway address on the bridge')
    .option('--host-binding-ip <ip>', 'default host IP for published ports (default: every address of the host)')
    .option('--snat-ipv4 <ip>', 'SNAT outgoing IPv4 traffic to this address instead of masquerading')
    .option('--snat-ipv6 <ip>', 'SNAT outgoing IPv6 traffic to this address instead of masquerading')
    .option('--iface-prefix <prefix>', 'endpoint interface names are <prefix>0, <prefix>1… (default: eth)')
    .option('--trusted-interface <if>', 'host interface allowed direct access to endpoints (repeatable)', collect)
    .option('-o, --opt <key=value>', 'Docker driver option, e.g. com.docker.network.bridge.enable_icc=false (repeatable)', collect)
    .option('--label <key=value>', 'label stored with the network (repeatable)', collect)
    .option('-d, --driver <driver>', 'accepted for Docker habits: bridge, the only driver (default: bridge)')
    .option('--if-not-exists', 'succeed without change if the network exists with the same settings')
    .addHelpText('after', '\nExamples:\n  brnet network create web\n  brnet network create db --subnet 10.20.0.0/24 --ipv6 --no-icc\n')
    .action(mutating(mode, async () => (await import('./commands/network.ts')).create));
  leaf(mode, network, 'rm <name...>', 'remove networks, their bridges and rules')
    .alias('remove')
    .option('-f, --force', 'remove the network\'s endpoints first (and forget a bridge that is not brnet\'s, leaving the device); unlike Docker\'s -f, a missing network is still an error: see --if-exists')
    .option('--if-exists', 'succeed if a network does not exist')
    .addHelpText('after', '\nExamples:\n  brnet network rm web\n  brnet network rm --force --if-exists web db\n')
    .action(mutating(mode, async () => (await import('./commands/network.ts')).rm));
  leaf(mode, network, 'ls', 'list networks')
    .alias('list')
    .option('-f, --filter <key=value>', 'only matching networks: name=, id= (part of it), label=KEY[=VALUE], driver=bridge, internal=true|false (repeatable)', collect)
    .option('--format <template>', 'print each network with a template: {{.Name}}, {{.ID}}, {{json .}}, table … (see man brnet)')
    .option('--no-trunc', 'the whole 64-digit ID, in the table and in {{.ID}}')
    .addHelpText(
      'after',
      '\nThe values of one filter key are alternatives (labels excepted: all must match); different\n' +
        'keys must all match. --format fields: .ID (12 digits) .Id .Name .Driver .Scope .Bridge\n' +
        '.Subnets .IPv4 .IPv6 .Internal .Labels .Endpoints .CreatedAt; `table` first adds a header\n' +
        'and aligns the columns between \\t; `json` is {{json .}}.\n' +
        '\nExamples:\n  brnet network ls\n  brnet network ls -q\n  brnet network ls --filter label=team=ops --filter internal=false\n' +
        "  brnet network ls --format '{{.Name}} {{.ID}}'\n  brnet network ls --format 'table {{.Name}}\\t{{.Subnets}}\\t{{.Endpoints}}'\n",
    )
    .action(reading(mode, async (_o, cmd: Command) => (await import('./commands/network.ts')).ls(ctxOf(cmd), cmd.opts())));
  leaf(mode, network, 'inspect <name...>', 'show everything about networks, as JSON')
    .option('-f, --format <template>', 'print each network with a template instead: {{.Name}}, {{.Id}}, {{json .}} (see network ls --help)')
    .addHelpText('after', "\nExamples:\n  brnet network inspect web\n  brnet network inspect web --format '{{.Id}}'\n")
    .action(
      reading(mode, async (names: string[], _o, cmd: Command) => (await import('./commands/network.ts')).inspect(ctxOf(cmd), names, cmd.opts())),
    );

  leaf(mode, network, 'prune', 'remove every network without endpoints')
    .option('--filter <key=value>', 'only networks with this label: label=KEY or label=KEY=VALUE (repeatable: all must match)', collect)
    .option('-y, --yes', 'do not ask (needed when there is no terminal to ask on)')
    .option('-f, --force', 'the same as --yes (Docker\'s spelling)')
    .addHelpText(
      'after',
      '\nOn a terminal it lists the networks and asks; elsewhere --yes is required (exit 2 without).\n' +
        '\nExamples:\n  brnet network prune\n  brnet network prune --yes --filter label=env=test\n',
    )
    .action(
      mode.sink
        ? mutating(mode, async () => (await import('./commands/network.ts')).pruneInBatch)
        : async (_o, cmd: Command) => (await import('./commands/network.ts')).prune(ctxOf(cmd), cmd.opts()),
    );

  const endpoint = program
    .command('endpoint')
    .summary('attach network namespaces to networks: add, remove, link, list and inspect endpoints')
    .description('Manage endpoints: veth pairs joining a network namespace to a network')
    .addHelpText(
      'after',
      '\nExamples:\n  brnet endpoint add web app --netns app --create-netns -p 8080:80\n  brnet endpoint ls web\n' +
        '  brnet endpoint inspect web app\n  brnet endpoint rm web app\n',
    );
  leaf(mode, endpoint, 'add <network> <endpoint>', 'attach a network namespace to a network with a veth pair')
    .requiredOption('--netns <ns>', 'the namespace: a name under /run/netns, a path, or pid:PID')
    .option('--create-netns', 'create the named namespace if it is missing (deleted again with its last endpoint)')
    .option('--ip <ip>', 'IPv4 address (default: the lowest free one of the subnet or ip-range)')
    .option('--ip6 <ip>', 'IPv6 address (default: the lowest free one)')
    .option('--mac <mac>', 'MAC address (default: derived from the network and the endpoint name)')
    .option('--ifname <name>', 'interface name in the namespace (default: the lowest free <prefix>N)')
    .option('--no-default-route', 'add no default route via the gateway')
    .option('-p, --publish <spec>', 'publish a port, as `port publish` does (repeatable)', collect)
    .addHelpText(
      'after',
      '\nExamples:\n  brnet endpoint add web app --netns app --create-netns\n' +
        '  brnet endpoint add web db --netns /run/netns/db --ip 10.20.0.10 -p 5432:5432\n  brnet endpoint add web job --netns pid:4242 --no-default-route\n',
    )
    .action(mutating(mode, async () => (await import('./commands/endpoint.ts')).add));
  leaf(mode, endpoint, 'rm <network> <endpoint...>', 'remove endpoints: their veths, ports and addresses')
    .alias('remove')
    .option('--if-exists', 'succeed if an endpoint does not exist')
    .addHelpText('after', '\nExamples:\n  brnet endpoint rm web app\n  brnet endpoint rm --if-exists web app db\n')
    .action(mutating(mode, async () => (await import('./commands/endpoint.ts')).rm));
  leaf(mode, endpoint, 'link <network> <from> <to> <port...>', 'on a network with ICC off, let endpoint FROM connect to endpoint TO on these ports')
    .addHelpText(
      'after',
      '\nPORT: PORT[/tcp|udp|sctp] (default tcp). Replies flow back; nothing else is opened. On a\n' +
        'network with ICC on, the link is recorded and changes nothing.\n' +
        '\nExamples:\n  brnet endpoint link db app pg 5432\n  brnet endpoint link db app dns 53/udp 53/tcp\n',
    )
    .action(mutating(mode, async () => (await import('./commands/link.ts')).link));
  leaf(mode, endpoint, 'unlink <network> <from> <to> [port...]', 'remove links from FROM to TO: those on each PORT, or all of them')
    .addHelpText('after', '\nExamples:\n  brnet endpoint unlink db app pg\n  brnet endpoint unlink db app dns 53/udp\n')
    .action(mutating(mode, async () => (await import('./commands/link.ts')).unlink));
  leaf(mode, endpoint, 'ls [network]', 'list endpoints')
    .alias('list')
    .addHelpText('after', '\nExamples:\n  brnet endpoint ls\n  brnet endpoint ls web -q\n')
    .action(reading(mode, async (network: string | undefined, _o, cmd: Command) => (await import('./commands/endpoint.ts')).ls(ctxOf(cmd), network)));
  leaf(mode, endpoint, 'inspect <network> <endpoint>', 'show everything about an endpoint, as JSON')
    .addHelpText('after', '\nExamples:\n  brnet endpoint inspect web app\n')
    .action(reading(mode, async (network: string, name: string, _o, cmd: Command) => (await import('./commands/endpoint.ts')).inspect(ctxOf(cmd), network, name)));

  const port = program
    .command('port')
    .summary('publish, unpublish and list published ports')
    .description('Publish endpoint ports on the host')
    .addHelpText(
      'after',
      '\nSPEC: [HOSTIP:][HOSTPORT[-END]:]PORT[-END][/tcp|udp|sctp] (see `brnet port publish --help`).\n' +
        '\nExamples:\n  brnet port publish web app 8080:80\n  brnet port ls web\n  brnet port unpublish web app 80\n',
    );
  leaf(mode, port, 'publish <network> <endpoint> <spec...>', 'publish endpoint ports on host ports')
    .addHelpText(
      'after',
      '\nSPEC: [HOSTIP:][HOSTPORT[-END]:]PORT[-END][/tcp|udp|sctp]; an IPv6 HOSTIP in brackets.\n' +
        'Without a host port, one is taken from the ephemeral range; without a host IP, the network\'s\n' +
        'host binding IP, else every IPv4 (and, with IPv6, every IPv6) address, with the same port.\n' +
        '\nExamples:\n  brnet port publish web app 8080:80\n  brnet port publish web app 127.0.0.1:5432:5432 53:53/udp\n' +
        '  brnet port publish web app [fd00::10]:8443:443 8000-8010:80 9000-9002:9000-9002 80\n',
    )
    .action(mutating(mode, async () => (await import('./commands/port.ts')).publish));
  leaf(mode, port, 'unpublish <network> <endpoint> [spec...]', 'unpublish ports: those matching each SPEC, or all of the endpoint\'s')
    .addHelpText('after', '\nExamples:\n  brnet port unpublish web app\n  brnet port unpublish web app 80 53/udp\n  brnet port unpublish web app 127.0.0.1:5432:5432\n')
    .action(mutating(mode, async () => (await import('./commands/port.ts')).unpublish));
  leaf(mode, port, 'ls [network] [endpoint]', 'list published ports')
    .alias('list')
    .addHelpText('after', '\nExamples:\n  brnet port ls\n  brnet port ls web app --json\n  brnet port ls web -q\n')
    .action(
      reading(mode, async (network: string | undefined, endpoint: string | undefined, _o, cmd: Command) =>
        (await import('./commands/port.ts')).ls(ctxOf(cmd), network, endpoint),
      ),
    );

  const config = program
    .command('config')
    .summary('host-wide settings')
    .description('Show or change host-wide settings')
    .addHelpText('after', '\nExamples:\n  brnet config show\n  brnet config set userland-proxy true\n');
  leaf(mode, config, 'show', 'show the host-wide settings')
    .addHelpText('after', '\nExamples:\n  brnet config show\n  brnet config show --json\n')
    .action(reading(mode, async (_o, cmd: Command) => (await import('./commands/config.ts')).show(ctxOf(cmd))));
  leaf(mode, config, 'set <key> <value>', 'change a setting: iptables, ip6tables, ip-forward, userland-proxy, default-address-pools')
    .addHelpText('after', '\nExamples:\n  brnet config set iptables false\n  brnet config set default-address-pools 10.10.0.0/16/24,10.11.0.0/16/24\n')
    .action(mutating(mode, async () => (await import('./commands/config.ts')).set));

  const restoring = mutating(mode, async () => (await import('./commands/system.ts')).restore);
  const restore = leaf(mode, program, 'restore', 'make the kernel match the state again (after a reboot, firewall flush or crash)')
    .addHelpText(
      'after',
      '\nWith --watch it stays in the foreground and restores again within 2 s of anything that removes\n' +
        "brnet's firewall rules (a flush, an iptables-restore, a firewalld reload or restart), one line on\n" +
        'stderr per repair; SIGTERM or Ctrl-C ends it (exit 0). contrib/brnet-restore.service runs it.\n' +
        '\nExamples:\n  brnet restore\n  brnet restore --dry-run\n  brnet restore --watch\n',
    )
    .action(async (...a: unknown[]) => {
      const cmd = a.at(-1) as Command;
      if (!(cmd.opts() as { watch?: boolean }).watch) return restoring(...a);
      if (mode.sink) throw invalid('`restore --watch` runs until stopped and cannot run inside a batch');
      return (await import('./commands/system.ts')).watchRestore(ctxOf(cmd));
    });
  restore.option('--watch', 'stay and restore again after every flush or reload, until stopped');
  leaf(mode, program, 'check', 'compare the kernel with the state; exit 1 on any difference')
    .addHelpText('after', '\nExamples:\n  brnet check && echo clean\n  brnet check --json\n')
    .action(
      reading(mode, async (_o, cmd: Command) => {
        const ctx = ctxOf(cmd);
        const progress = (await import('./ui/progress.ts')).startProgress(ctx, 'check: comparing the kernel with the state');
        try {
          await (await import('./commands/system.ts')).check(ctx);
        } finally {
          progress.stop();
        }
      }),
    );

  leaf(mode, program, 'explain', "what brnet's rules do to one packet, from its rule model and the live host (nothing is sent)")
    .requiredOption('--from <src>', 'NETWORK/ENDPOINT, host, or an IP address (a client outside, or on another bridge)')
    .requiredOption('--to <dst>', 'NETWORK/ENDPOINT or an IP address, with :PORT and /PROTO (tcp default; no port: icmp)')
    .addHelpText('after', '\nExamples:\n  brnet explain --from web/app --to db/pg:5432\n  brnet explain --from 198.51.100.7 --to 192.0.2.10:8080/tcp --json\n  brnet explain --from host --to 127.0.0.1:8080\n')
    .action(reading(mode, async (o: { from?: string; to?: string }, cmd: Command) => (await import('./commands/explain.ts')).explain(ctxOf(cmd), o)));
  leaf(mode, program, 'doctor', 'the host as brnet sees it: kernel features, firewalls, other network managers, the state dir; exit 1 when something blocks brnet')
    .addHelpText('after', '\nExamples:\n  brnet doctor\n  brnet doctor --json\n')
    .action(reading(mode, async (_o, cmd: Command) => (await import('./commands/doctor.ts')).doctor(ctxOf(cmd))));
  leaf(mode, program, 'reset', 'remove everything brnet made and put back the sysctls it changed; leaves an empty state')
    .option('-y, --yes', 'do not ask (required when not on a terminal)')
    .addHelpText('after', '\nExamples:\n  brnet reset --dry-run\n  brnet reset --yes\n')
    .action(mutating(mode, async () => (await import('./commands/reset.ts')).reset));

  leaf(mode, program, 'batch [file]', 'run brnet commands from FILE (or - for stdin), one per line, all or nothing')
    .addHelpText(
      'after',
      '\nEach line is a brnet command without the leading `brnet`; blank lines and # comments are\n' +
        'ignored. All lines run under one lock with one firewall commit; if any line fails,\n' +
        'nothing is applied and the error names the line.\n' +
        '\nExamples:\n  brnet batch setup.brnet\n  printf "network create web\\nendpoint add web app --netns app --create-netns -p 8080:80\\n" | brnet batch -\n',
    )
    .action(reading(mode, async (file: string | undefined, _o, cmd: Command) => (await import('./commands/batch.ts')).batch(ctxOf(cmd), file, operationOf)));

  leaf(mode, program, 'completion', 'print a shell completion script (bash or zsh) on stdout')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .addHelpText(
      'after',
      '\nExamples:\n  brnet completion bash > /usr/share/bash-completion/completions/brnet\n' +
        '  source <(brnet completion bash)\n  brnet completion zsh > /usr/local/share/zsh/site-functions/_brnet\n',
    )
    .action(reading(mode, async (shell: string, _o, cmd: Command) => (await import('./commands/completion.ts')).completion(shell, cmd, VERSION)));

  leaf(mode, program, 'rootless [cmd...]', 'for a user without root: run CMD (default: the shell) in rootlesskit\'s namespaces, where brnet works')
    .addHelpText(
      'after',
      '\nStarts rootlesskit (--net=slirp4netns --port-driver=builtin --copy-up=/etc --copy-up=/run\n' +
        '--disable-host-loopback --state-dir=$XDG_RUNTIME_DIR/rootlesskit), makes /run/netns a directory of\n' +
        'its own inside, and runs CMD there as uid 0 of the user namespace. Needs rootlesskit, slirp4netns,\n' +
        'newuidmap/newgidmap (uidmap) and ranges for the user in /etc/subuid and /etc/subgid. Exits with\n' +
        'the status of CMD. --dry-run prints the rootlesskit command instead.\n' +
        '\nExamples:\n  brnet rootless\n  brnet rootless -- sh -c \'brnet network create web && exec sleep infinity\'\n',
    )
    .action(reading(mode, async (args: string[] | undefined, _o, cmd: Command) => (await import('./commands/rootless.ts')).rootless(ctxOf(cmd), args ?? [])));

  leaf(mode, program, 'version', 'print the version')
    .addHelpText('after', '\nExamples:\n  brnet version\n  brnet --version\n  brnet version --json\n')
    .action(reading(mode, async (_o, cmd: Command) => (await import('./commands/version.ts')).version(ctxOf(cmd), VERSION)));
  return program;
}

/** For `brnet batch`: a parser from one line's words to its operation, through the same table. */
function operationOf(): (argv: string[]) => Promise<Operation<unknown>> {
  const sink: Operation<unknown>[] = [];
  const program = buildProgram({ sink });
  silence(program);
  // One tree for every line: commander restores each command's option values before every
  // parse after the first.
  return async (argv) => {
    sink.length = 0;
    await program.parseAsync(['node', 'brnet', ...argv]);
    const [op] = sink;
    if (!op) throw invalid('not a command that changes anything');
    return op;
  };
}

function silence(cmd: Command): void {
  cmd.exitOverride();
  cmd.configureOutput({ outputError: () => {}, writeOut: () => {}, writeErr: () => {} });
  for (const c of cmd.commands) silence(c);
}

function usageError(str: string): void {
  // Commander's text: "error: unknown option '--x'\n(Did you mean --y?)\n"
  const lines = str.trim().split('\n').filter(Boolean);
  const msg = (lines[0] ?? 'usage error').replace(/^error: /, '');
  const hint = lines.slice(1).join(' ').replace(/^\((.*)\)$/, '$1');
  report(new BrnetError('USAGE', msg, hint ? { hint } : {}));
}

function report(err: BrnetError): void {
  if (jsonErrors) {
    // hint only when there is one: scripts that compare the other three fields keep working.
    write(2, `${JSON.stringify({ error: { code: err.code, message: err.message, exitCode: err.exitCode, ...(err.hint ? { hint: err.hint } : {}) } })}\n`);
  } else {
    write(2, `brnet: ${err.message}\n`);
    if (err.hint) write(2, `hint: ${err.hint}\n`);
  }
}

/**
 * `brnet help network frobnicate` is an unknown command, as `brnet network frobnicate` is,
 * where `--help` would show the noun's help instead.
 */
function checkHelpPath(program: Command, path: string[] | null): void {
  let cmd = program;
  for (const word of path ?? []) {
    if (!cmd.commands.length) return; // a leaf: the rest are its arguments
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    const where = ['brnet', ...(cmd === program ? [] : [cmd.name()])].join(' ');
    if (!sub) throw invalid(`unknown command '${word}'`, `run: ${where} --help`);
    cmd = sub;
  }
}

export async function main(argv = process.argv): Promise<number> {
  jsonErrors = argv.includes('--json');
  const program = buildProgram();
  try {
    const habit = habitError(argv.slice(2));
    if (habit) throw habit;
    checkHelpPath(program, helpPath(argv.slice(2)));
    await program.parseAsync([...argv.slice(0, 2), ...helpAsFlag(argv.slice(2))]);
    return ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      // `brnet network` without a verb: help goes to stderr and it is a usage error.
      if (e.code === 'commander.help' && e.exitCode !== 0) {
        const usage = /Usage: (brnet(?: [a-z]+)*)/.exec(helpOnError)?.[1] ?? 'brnet';
        const verbs = /Commands:\n([\s\S]*?)(\n\n|$)/.exec(helpOnError)?.[1]?.match(/^ {2}([a-z]+)/gm)?.map((v) => v.trim()).filter((v) => v !== 'help') ?? [];
        const noun = usage.replace(/^brnet ?/, '');
        const what = `missing ${noun ? `${noun} ` : ''}command${verbs.length ? ` (one of: ${verbs.join(', ')})` : ''}`;
        report(new BrnetError('USAGE', what, { hint: `run: ${usage} --help` }));
        return ExitCode.usage;
      }
      return e.exitCode === 0 ? 0 : ExitCode.usage; // already printed through outputError
    }
    const err = e instanceof BrnetError ? e : new BrnetError('INTERNAL', `internal error: ${e instanceof Error ? e.message : String(e)}`, { cause: e, hint: 'run with --debug for details' });
    report(err);
    if (process.env.BRNET_DEBUG === '1' || argv.includes('--debug')) write(2, `${errorChain(err)}\n`);
    return err.exitCode;
  }
}
