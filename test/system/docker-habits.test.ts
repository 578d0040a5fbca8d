// What a `docker network` user types out of habit: network IDs and their prefixes, the driver
// flag, verbs brnet does not have, `version --json`, hints in JSON errors, `help NOUN VERB`.
// Every brnet call runs in a sandbox.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BRNET_BIN, REPO_ROOT, Sandbox, describeRoot } from '../helpers/sandbox.ts';

let sb: Sandbox;

describeRoot('docker habits', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('a network is named by its full ID or a unique prefix of 4 or more hex digits, everywhere', async () => {
    const web = (await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.80.0.0/24', '--json'])).json();
    const id: string = web.id;
    for (const ref of [id, id.slice(0, 12), id.slice(0, 4)]) {
      expect((await sb.brnetOk(['network', 'inspect', ref])).json(), ref).toEqual(web);
    }
    const short = id.slice(0, 12);
    const ep = (await sb.brnetOk(['endpoint', 'add', short, 'app', '--netns', 'app', '--create-netns', '--json'])).json();
    expect(ep).toMatchObject({ network: 'web', name: 'app' });
    expect((await sb.brnetOk(['endpoint', 'ls', id.slice(0, 6), '-q'])).stdout).toBe('app\n');
    expect((await sb.brnetOk(['endpoint', 'inspect', id, 'app'])).json().name).toBe('app');
    const pub = (await sb.brnetOk(['port', 'publish', short, 'app', '18080:80', '--json'])).json();
    expect(pub).toMatchObject({ network: 'web', endpoint: 'app' });
    expect((await sb.brnetOk(['port', 'ls', id.slice(0, 5), 'app', '--json'])).json()).toHaveLength(pub.ports.length);
    expect((await sb.brnetOk(['port', 'unpublish', id, 'app', '--json'])).json().ports).toHaveLength(pub.ports.length);
    // errors name the network, not the prefix the user typed
    const taken = await sb.brnet(['endpoint', 'add', short, 'app', '--netns', 'app']);
    expect(taken.code).toBe(4);
    expect(taken.stderr).toMatch(/^brnet: endpoint app already exists in network web\n/);
    // batch lines too
    const batch = await sb.brnetOk(['batch', '-'], { input: `endpoint add ${short} b1 --netns b1 --create-netns\nport publish ${id.slice(0, 8)} b1 18081:81\n` });
    expect(batch.code).toBe(0);
    expect((await sb.brnetOk(['endpoint', 'ls', 'web', '-q'])).stdout).toBe('app\nb1\n');
    expect((await sb.brnetOk(['endpoint', 'rm', short, 'app', 'b1'])).stdout).toBe('app\nb1\n');
    // fewer than 4 digits, a name that is nobody's, a prefix of no ID: not found (3)
    for (const ref of [id.slice(0, 3), 'nope', id.slice(0, 11) + (id[11] === '0' ? '1' : '0')]) {
      const r = await sb.brnet(['network', 'inspect', ref]);
      expect(r.code, ref).toBe(3);
      expect(r.stderr, ref).toMatch(new RegExp(`^brnet: network ${ref} not found\n`));
    }
    // named twice, by name and by ID: removed once
    expect((await sb.brnetOk(['network', 'rm', id.slice(0, 4), 'web'])).stdout).toBe('web\n');
    expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout).toBe('');
    expect((await sb.brnet(['network', 'rm', '--if-exists', short])).code).toBe(0);
  });

  it('a name wins over an ID prefix', async () => {
    const a = (await sb.brnetOk(['network', 'create', 'alpha', '--subnet', '10.81.0.0/24', '--json'])).json();
    const prefix = a.id.slice(0, 4);
    await sb.brnetOk(['network', 'create', prefix, '--subnet', '10.82.0.0/24']);
    expect((await sb.brnetOk(['network', 'inspect', prefix])).json().name).toBe(prefix);
    expect((await sb.brnetOk(['network', 'inspect', a.id.slice(0, 5)])).json().name).toBe('alpha');
    expect((await sb.brnetOk(['network', 'rm', prefix, 'alpha'])).stdout).toBe(`${prefix}\nalpha\n`);
  });

  it('an ambiguous ID prefix is an error (2) listing the candidates, and changes nothing', async () => {
    // IDs are random: two that share a prefix are written into a copy of the state, in a
    // state dir of its own that only commands failing before any change are given.
    const one = (await sb.brnetOk(['network', 'create', 'one', '--subnet', '10.83.0.0/24', '--json'])).json();
    const two = (await sb.brnetOk(['network', 'create', 'two', '--subnet', '10.84.0.0/24', '--json'])).json();
    const state = JSON.parse(readFileSync(join(sb.stateDir, 'state.json'), 'utf8'));
    const dir = `${sb.stateDir}-ambiguous`;
    mkdirSync(dir, { mode: 0o700 });
    try {
      const ids = ['abcd1' + one.id.slice(5), 'abcd2' + two.id.slice(5)];
      state.networks = state.networks.map((n: any, i: number) => ({ ...n, id: ids[i] }));
      writeFileSync(join(dir, 'state.json'), JSON.stringify(state), { mode: 0o600 });
      const text = readFileSync(join(dir, 'state.json'), 'utf8');
      for (const args of [
        ['network', 'inspect', 'abcd'],
        ['network', 'rm', 'abcd'],
        ['endpoint', 'add', 'abcd', 'x', '--netns', 'x', '--create-netns'],
        ['endpoint', 'ls', 'abcd'],
        ['port', 'ls', 'abcd'],
      ]) {
        const r = await sb.brnet([...args, '--state-dir', dir]);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(/^brnet: network ID prefix abcd is ambiguous: it matches one \(abcd1[0-9a-f]{7}\), two \(abcd2[0-9a-f]{7}\)\nhint: /);
      }
      expect((await sb.brnetOk(['network', 'inspect', 'abcd2', '--state-dir', dir])).json().name).toBe('two');
      expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe(text);
      expect((await sb.exec(['ip', 'netns', 'list'])).stdout).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await sb.brnetOk(['network', 'rm', 'one', 'two']);
  });

  it('version --json: version, runtime, firewall backend, state dir, rootless; for anyone', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    const v = (await sb.brnetOk(['version', '--json'])).json();
    expect(v).toEqual({ version, runtime: expect.stringMatching(/^(bun \d+\.\d+|node v\d+\.\d+)/), firewallBackend: 'iptables', stateDir: sb.stateDir, rootless: false });
    expect((await sb.brnetOk(['version'])).stdout).toBe(`${version}\n`);
    // the compiled executable says bun, the Node fallback node
    expect(v.runtime).toMatch(/^bun \d+\.\d+\.\d+$/);
    expect((await sb.brnetOk(['version', '--json'], { env: { BRNET_RUNTIME: 'node' } })).json().runtime).toMatch(/^node v\d+\.\d+\.\d+$/);
    // root of a user namespace of its own is rootless
    const env = sb.brnetEnv();
    const userns = await sb.exec(['unshare', '--user', '--map-root-user', BRNET_BIN, 'version', '--json'], { env });
    expect(userns.code, userns.stderr).toBe(0);
    expect(JSON.parse(userns.stdout).rootless).toBe(true);
    // an unprivileged user who cannot read the state dir: the default backend, no error
    const nobody = await sb.exec(['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', BRNET_BIN, 'version', '--json'], { env });
    expect(nobody.code, nobody.stderr).toBe(0);
    expect(JSON.parse(nobody.stdout)).toMatchObject({ rootless: true, firewallBackend: 'iptables', stateDir: sb.stateDir });
    const nft = await Sandbox.create({ backend: 'nftables' });
    try {
      expect((await nft.brnetOk(['version', '--json'])).json().firewallBackend).toBe('nftables');
    } finally {
      await nft.destroy();
    }
  });

  it('--json errors carry the hint, when there is one', async () => {
    const r = await sb.brnet(['network', 'inspect', 'nope', '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'NOT_FOUND', message: 'network nope not found', exitCode: 3, hint: 'list networks with: brnet network ls' } });
    const usage = await sb.brnet(['network', 'lsit', '--json']);
    expect(JSON.parse(usage.stderr).error).toEqual({ code: 'USAGE', message: "unknown command 'lsit'", exitCode: 2, hint: 'Did you mean list?' });
  });

  it('`brnet help NOUN VERB` is `brnet NOUN VERB --help`; every noun has examples', async () => {
    for (const path of [['network', 'create'], ['endpoint', 'add'], ['port', 'publish'], ['config', 'set'], ['network'], ['restore']]) {
      const flag = await sb.brnetOk([...path, '--help']);
      const help = await sb.brnetOk(['help', ...path]);
      expect(help.stdout, path.join(' ')).toBe(flag.stdout);
      expect(help.stdout, path.join(' ')).toMatch(new RegExp(`^Usage: brnet ${path.join(' ')} `));
      expect((await sb.brnetOk(['--state-dir', sb.stateDir, 'help', ...path])).stdout).toBe(flag.stdout);
    }
    for (const noun of ['network', 'endpoint', 'port', 'config']) {
      expect((await sb.brnetOk([noun, '--help'])).stdout, noun).toMatch(new RegExp(`\nExamples:\n {2}brnet ${noun} `));
    }
    const unknown = await sb.brnet(['help', 'network', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^brnet: unknown command 'frobnicate'/);
    // the SPEC grammar and what --force means
    expect((await sb.brnetOk(['help', 'port', 'publish'])).stdout).toContain('SPEC: [HOSTIP:][HOSTPORT[-END]:]PORT[-END][/tcp|udp|sctp]');
    expect((await sb.brnetOk(['help', 'network', 'rm'])).stdout.replace(/\s+/g, ' ')).toMatch(/--force +remove the network's endpoints first .*unlike Docker's -f, a missing network is still an error/);
  });

  it('-d/--driver bridge is accepted; any other driver is refused (2) with a hint, changing nothing', async () => {
    expect((await sb.brnetOk(['network', 'create', 'drv1', '-d', 'bridge', '--subnet', '10.85.0.0/24', '--json'])).json().name).toBe('drv1');
    expect((await sb.brnetOk(['network', 'create', 'drv2', '--driver', 'bridge', '--subnet', '10.85.1.0/24', '-q'])).stdout).toBe('');
    expect((await sb.brnetOk(['network', 'create', 'drv1', '--driver', 'bridge', '--subnet', '10.85.0.0/24', '--if-not-exists'])).code).toBe(0);
    for (const d of ['overlay', 'macvlan', 'Bridge']) {
      const r = await sb.brnet(['network', 'create', 'drv3', '-d', d]);
      expect(r.code, d).toBe(2);
      expect(r.stderr, d).toBe(`brnet: driver ${d} is not supported: brnet makes bridge networks only\nhint: leave out --driver, or give --driver bridge\n`);
    }
    const batch = await sb.brnet(['batch', '-'], { input: 'network create drv4 --driver ipvlan\n' });
    expect(batch.code).toBe(2);
    expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout).toBe('drv1\ndrv2\n');
    await sb.brnetOk(['network', 'rm', 'drv1', 'drv2']);
  });

  it('network connect/disconnect and completion fish answer with what to type instead (2)', async () => {
    const cases: [string[], string, string][] = [
      [['network', 'connect', 'web', 'app'], 'brnet: there is no `brnet network connect`: brnet attaches a namespace, not a container, to a network', 'hint: use: brnet endpoint add NETWORK ENDPOINT --netns NS'],
      [['network', 'disconnect', 'web', 'app'], 'brnet: there is no `brnet network disconnect`: brnet detaches an endpoint, not a container, from a network', 'hint: use: brnet endpoint rm NETWORK ENDPOINT'],
      [['completion', 'fish'], 'brnet: no completion script for fish: brnet completes bash or zsh', 'hint: brnet completion bash, or brnet completion zsh'],
    ];
    for (const [args, message, hint] of cases) {
      const r = await sb.brnet(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`${message}\n${hint}\n`);
      const j = await sb.brnet([...args, '--json']);
      expect(JSON.parse(j.stderr).error).toEqual({ code: 'USAGE', message: message.replace(/^brnet: /, ''), exitCode: 2, hint: hint.replace(/^hint: /, '') });
    }
  });

  it('a user who is not root: one precise line and a hint (5); read access is enough for ls, inspect and --dry-run', async () => {
    await sb.brnetOk(['network', 'create', 'shared', '--subnet', '10.86.0.0/24']);
    const asNobody = (args: string[], dir: string) =>
      sb.exec(['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', BRNET_BIN, ...args], { env: sb.brnetEnv({ BRNET_STATE_DIR: dir }) });
    const hint = 'hint: commands that change the network need root (sudo brnet ...); --dry-run and read-only commands (ls, inspect, config show) need only read access to the state dir\n';
    for (const args of [['network', 'ls'], ['network', 'create', 'x', '--dry-run'], ['endpoint', 'ls']]) {
      const r = await asNobody(args, sb.stateDir); // root's, 0700
      expect(r.code, args.join(' ')).toBe(5);
      expect(r.stderr, args.join(' ')).toBe(`brnet: permission denied: cannot read the state dir ${sb.stateDir} as uid 65534\n${hint}`);
    }
    // root's state dir, readable by all: reading works, changing needs root
    const dir = `${sb.stateDir}-readable`;
    mkdirSync(dir, { mode: 0o755 });
    try {
      writeFileSync(join(dir, 'state.json'), readFileSync(join(sb.stateDir, 'state.json')), { mode: 0o644 });
      const ls = await asNobody(['network', 'ls', '-q'], dir);
      expect([ls.code, ls.stdout, ls.stderr]).toEqual([0, 'shared\n', '']);
      expect(JSON.parse((await asNobody(['network', 'inspect', 'shared'], dir)).stdout).name).toBe('shared');
      const plan = await asNobody(['network', 'create', 'other', '--subnet', '10.87.0.0/24', '--dry-run'], dir);
      expect([plan.code, plan.stderr]).toEqual([0, '']);
      expect(plan.stdout).toMatch(/^ip link add /m);
      const change = await asNobody(['network', 'rm', 'shared'], dir);
      expect(change.code).toBe(5);
      expect(change.stderr).toMatch(/^brnet: this command changes the network: it needs CAP_NET_ADMIN over network namespace net:\[\d+\], which uid 65534 does not have\nhint: .*--dry-run shows the plan without root/);
      const j = await asNobody(['network', 'ls', '--json'], sb.stateDir);
      expect(JSON.parse(j.stderr).error).toMatchObject({ code: 'ENVIRONMENT', exitCode: 5, hint: hint.slice(6, -1) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await sb.brnetOk(['network', 'rm', 'shared']);
  });

  /** Three networks the filter, format and prune tests share: made by the first that runs. */
  async function trio(): Promise<any> {
    const a = (await sb.brnetOk(['network', 'create', 'f-web', '--subnet', '10.88.0.0/24', '--label', 'team=ops', '--label', 'env=prod', '--if-not-exists', '--json'])).json();
    await sb.brnetOk(['network', 'create', 'f-db', '--subnet', '10.88.1.0/24', '--label', 'team=dev', '--internal', '--if-not-exists']);
    await sb.brnetOk(['network', 'create', 'f-cache', '--subnet', '10.88.2.0/24', '--if-not-exists']);
    return a;
  }

  it('network ls --filter KEY=VALUE: name, id, label, driver, internal', async () => {
    const a = await trio();
    const names = async (...filters: string[]) => (await sb.brnetOk(['network', 'ls', '-q', ...filters.flatMap((f) => ['--filter', f])])).stdout.split('\n').filter(Boolean);
    expect(await names()).toEqual(['f-web', 'f-db', 'f-cache']);
    expect(await names('name=web')).toEqual(['f-web']);
    expect(await names('name=web', 'name=cache')).toEqual(['f-web', 'f-cache']);
    expect(await names(`id=${a.id.slice(0, 10)}`)).toEqual(['f-web']);
    expect(await names('label=team')).toEqual(['f-web', 'f-db']);
    expect(await names('label=team=dev')).toEqual(['f-db']);
    expect(await names('label=team', 'label=env=prod')).toEqual(['f-web']);
    expect(await names('driver=bridge')).toEqual(['f-web', 'f-db', 'f-cache']);
    expect(await names('driver=overlay')).toEqual([]);
    expect(await names('internal=true')).toEqual(['f-db']);
    expect(await names('internal=false', 'label=team')).toEqual(['f-web']);
    // the table and --json filter the same way
    const table = (await sb.brnetOk(['network', 'ls', '--filter', 'label=team'])).stdout.split('\n');
    expect(table[0]).toMatch(/^NAME +ID +BRIDGE/);
    expect(table.slice(1).filter(Boolean).map((l) => l.split(/ +/)[0])).toEqual(['f-web', 'f-db']);
    expect((await sb.brnetOk(['network', 'ls', '--filter', 'internal=1', '--json'])).json().map((n: any) => n.name)).toEqual(['f-db']);
    for (const [f, message] of <[string, string][]>[
      ['colour=red', 'brnet: --filter colour=red: unknown filter "colour"'],
      ['internal=maybe', 'brnet: --filter internal=maybe: internal is true or false'],
      ['name', 'brnet: --filter name: the form is name=VALUE'],
    ]) {
      const r = await sb.brnet(['network', 'ls', '--filter', f]);
      expect(r.code, f).toBe(2);
      expect(r.stdout, f).toBe('');
      expect(r.stderr.split('\n')[0], f).toBe(message);
    }
  });

  it('--format on network ls and inspect: each documented field, json, table', async () => {
    await trio();
    const web = (await sb.brnetOk(['network', 'inspect', 'f-web'])).json();
    const one = async (format: string, cmd = ['network', 'inspect', 'f-web']) => (await sb.brnetOk([...cmd, '--format', format])).stdout;
    expect(await one('{{.Name}} {{.ID}}', ['network', 'ls', '--filter', 'name=f-web'])).toBe(`f-web ${web.id.slice(0, 12)}\n`);
    expect(await one('{{.ID}}')).toBe(`${web.id}\n`);
    expect(await one('{{.Id}}', ['network', 'ls', '--filter', 'name=f-web'])).toBe(`${web.id}\n`);
    expect(await one('{{.ID}}', ['network', 'ls', '--filter', 'name=f-web', '--no-trunc'])).toBe(`${web.id}\n`);
    expect((await sb.brnetOk(['network', 'ls', '-f', 'name=f-web', '--no-trunc'])).stdout.split('\n')[1]).toMatch(new RegExp(`^f-web +${web.id} +${web.bridge} `));
    const fields: [string, string][] = [
      ['Name', 'f-web'],
      ['Id', web.id],
      ['Driver', 'bridge'],
      ['Scope', 'local'],
      ['Bridge', web.bridge],
      ['Subnets', '10.88.0.0/24'],
      ['IPv4', 'true'],
      ['IPv6', 'false'],
      ['Internal', 'false'],
      ['Labels', 'team=ops,env=prod'],
      ['Endpoints', '0'],
      ['CreatedAt', web.created],
    ];
    for (const [field, value] of fields) expect(await one(`{{.${field}}}`), field).toBe(`${value}\n`);
    expect(await one('{{.Internal}}', ['network', 'inspect', 'f-db'])).toBe('true\n');
    expect(JSON.parse(await one('{{json .}}'))).toEqual(web);
    expect((await one('json', ['network', 'ls'])).trimEnd().split('\n').map((l) => JSON.parse(l).name)).toEqual(['f-web', 'f-db', 'f-cache']);
    expect(await one('{{json .Labels}}')).toBe('"team=ops,env=prod"\n');
    expect(await one('{{.Name}}', ['network', 'inspect', 'f-web', 'f-db'])).toBe('f-web\nf-db\n');
    const table = await one('table {{.Name}}\\t{{.Internal}}\\t{{.Endpoints}}', ['network', 'ls']);
    expect(table).toBe('NAME      INTERNAL   ENDPOINTS\nf-web     false      0\nf-db      true       0\nf-cache   false      0\n');
    expect(await one('table', ['network', 'ls', '--filter', 'name=f-cache'])).toMatch(/^NAME +ID +BRIDGE +IPV4 +IPV6 +ENDPOINTS +FLAGS\nf-cache /);
    for (const [format, message] of <[string, string][]>[
      ['{{.Nope}}', 'brnet: --format: no field .Nope'],
      ['{{range .}}x{{end}}', 'brnet: --format: {{range .}} is not supported'],
    ]) {
      const r = await sb.brnet(['network', 'ls', '--format', format]);
      expect(r.code, format).toBe(2);
      expect(r.stderr.split('\n')[0], format).toBe(message);
    }
    const both = await sb.brnet(['network', 'ls', '--format', '{{.Name}}', '--json']);
    expect(both.code).toBe(2);
  });

  it('network prune: networks without endpoints; --filter label=; asks on a terminal, needs --yes elsewhere', async () => {
    await trio();
    await sb.brnetOk(['endpoint', 'add', 'f-db', 'pg', '--netns', 'pg', '--create-netns']);
    const left = async () => (await sb.brnetOk(['network', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    // no terminal, no --yes: refused (2), nothing removed
    const refused = await sb.brnet(['network', 'prune']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('brnet: network prune asks before removing anything, and there is no terminal to ask on\nhint: give --yes to remove without asking\n');
    expect(await left()).toEqual(['f-web', 'f-db', 'f-cache']);
    // --dry-run asks nothing and changes nothing
    const dry = await sb.brnetOk(['network', 'prune', '--dry-run', '--filter', 'label=team', '--json']);
    expect(dry.json().result).toEqual({ removed: ['f-web'] });
    expect(await left()).toEqual(['f-web', 'f-db', 'f-cache']);
    // on a terminal: the question, and "n" keeps everything
    const onTty = async (answer: string) => {
      const cmd = `env BRNET_STATE_DIR=${sb.stateDir} NO_COLOR=1 ${BRNET_BIN} network prune`;
      return sb.exec(['script', '-qec', cmd, '/dev/null'], { input: answer, env: sb.brnetEnv() });
    };
    const no = await onTty('n\n');
    expect(no.code, no.stdout).toBe(0);
    expect(no.stdout).toContain('remove 2 networks without endpoints (f-web, f-cache)? [y/N]');
    expect(no.stdout).toContain('nothing removed');
    expect(await left()).toEqual(['f-web', 'f-db', 'f-cache']);
    // --filter label=, --yes
    expect((await sb.brnetOk(['network', 'prune', '--yes', '--filter', 'label=team=ops'])).stdout).toBe('f-web\n');
    expect(await left()).toEqual(['f-db', 'f-cache']);
    // "y" on a terminal
    const yes = await onTty('y\n');
    expect(yes.code, yes.stdout).toBe(0);
    // script(1) mixes the echo of the answer, readline's line editing and the output
    expect(yes.stdout).toContain('remove 1 network without endpoints (f-cache)? [y/N] ');
    // the name removed, on a line of its own (after the progress line, when one was drawn)
    expect(yes.stdout.slice(yes.stdout.indexOf('[y/N]'))).toMatch(/(\n|\u001b\[\?25h)f-cache\r?\n/);
    expect(await left()).toEqual(['f-db']);
    // nothing left to prune; -f is --yes, as in Docker
    const none = await sb.brnetOk(['network', 'prune', '-f']);
    expect([none.stdout, none.stderr]).toEqual(['', 'no network without endpoints to remove\n']);
    expect((await sb.brnetOk(['network', 'prune', '--yes', '--json'])).json()).toEqual({ removed: [] });
    // in a batch, --yes is required
    const batch = await sb.brnet(['batch', '-'], { input: 'network create f-x --subnet 10.88.3.0/24\nnetwork prune\n' });
    expect(batch.code).toBe(2);
    expect(batch.stderr).toMatch(/line 2.*network prune inside a batch needs --yes/);
    await sb.brnetOk(['batch', '-'], { input: 'network create f-x --subnet 10.88.3.0/24\nnetwork prune --yes\n' });
    expect(await left()).toEqual(['f-db']);
    expect((await sb.brnet(['network', 'prune', '--yes', '--filter', 'name=f-db'])).code).toBe(2);
    await sb.brnetOk(['network', 'rm', '--force', 'f-db']);
  });

  it('progress on a terminal: N/M frames on stderr; none without a terminal, with --json, or -q', async () => {
    const lines = (n: number, i0: number) =>
      Array.from({ length: n }, (_, i) => `network create pg${i0 + i} --subnet 10.89.${i0 + i}.0/24\nendpoint add pg${i0 + i} e --netns pg${i0 + i} --create-netns\n`).join('');
    const onTty = async (args: string[], extra = '', input = '') => {
      const env = `env -u NO_COLOR -u CI TERM=xterm-256color BRNET_STATE_DIR=${sb.stateDir} ${extra}`;
      const r = await sb.exec(['script', '-qec', `${env} ${BRNET_BIN} ${args.join(' ')}${input ? ` < ${input}` : ''}`, '/dev/null'], { env: sb.brnetEnv(), timeoutMs: 60_000 });
      expect(r.code, r.stdout).toBe(0);
      return r.stdout;
    };
    const file = join(sb.stateDir, 'progress.brnet');
    writeFileSync(file, lines(12, 0));
    const batch = await onTty(['batch', file]);
    expect(batch).toMatch(/batch: \d+\/24 /);
    expect(batch).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/u);
    expect(batch).toContain('\u001b[36m'); // the spinner is cyan
    expect(batch).toContain('24 commands applied');
    // restore after the bridges went: one part per network, named in the line
    const gone = await sb.sh('for b in $(ls /sys/class/net | grep "^br-"); do ip link del "$b"; done');
    expect(gone.code, gone.stderr).toBe(0);
    const restore = await onTty(['restore']);
    expect(restore).toMatch(/\d+\/\d+ network pg\d+ \(restore\)/);
    expect((await sb.brnet(['check'])).code).toBe(0);
    // network rm --force: N/M of its steps, without colour under NO_COLOR
    const names = Array.from({ length: 12 }, (_, i) => `pg${i}`);
    const rm = await onTty(['network', 'rm', '--force', ...names], 'NO_COLOR=1');
    expect(rm).toMatch(/\d+\/\d+ remove networks pg0, pg1/);
    expect(rm).not.toContain('\u001b[36m');
    expect(rm).toContain('pg11');
    // the same without a terminal, with --json, with -q: no frame at all
    writeFileSync(file, lines(12, 20));
    const piped = await sb.brnetOk(['batch', file]);
    expect(piped.stderr).toBe('24 commands applied\n');
    await sb.brnetOk(['batch', '-'], { input: Array.from({ length: 12 }, (_, i) => `network rm --force pg${20 + i}\n`).join('') });
    writeFileSync(file, lines(12, 60));
    const json = await onTty(['batch', file, '--json']);
    expect(json).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]|\u001b/u);
    expect(JSON.parse(json)).toEqual({ commands: 24 });
    await sb.brnetOk(['batch', '-'], { input: Array.from({ length: 12 }, (_, i) => `network rm --force pg${60 + i}\n`).join('') });
    writeFileSync(file, lines(12, 40));
    const quiet = await onTty(['batch', file, '-q']);
    expect(quiet).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]|\u001b/u);
    const rmJson = await onTty(['network', 'rm', '--force', '--json', ...Array.from({ length: 12 }, (_, i) => `pg${40 + i}`)]);
    expect(rmJson).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]|\u001b/u);
    expect(JSON.parse(rmJson).removed).toHaveLength(12);
  });

  it("the README's Quick start and task guide run in order without an error", async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const guide = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## For Docker users'));
    const blocks = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    // brnet's own lines; not those of the smoke script (its variables), nor those that write
    // files outside the sandbox or feed other commands.
    const lines = blocks
      .flatMap((b) => b.split('\n'))
      .map((l) => l.replace(/^.*&& (brnet )/, '$1').replace(/\s+#.*$/, '').trim())
      .filter((l) => l.startsWith('brnet ') && !/[$>|<&]/.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(15);
    expect(lines[0]).toBe('brnet network create web --subnet 10.20.0.0/24');
    const fresh = await Sandbox.create();
    try {
      for (const line of lines) {
        const r = await fresh.exec(['sh', '-c', `${BRNET_BIN} ${line.slice('brnet '.length)}`], { env: fresh.brnetEnv() });
        expect(r.code, `${line}\n${r.stderr}`).toBe(0);
      }
      // The guide ends by taking it all away again.
      expect(lines.at(-1)).toBe('brnet reset --yes');
      expect((await fresh.brnetOk(['network', 'ls', '-q'])).stdout).toBe('');
      expect((await fresh.brnet(['check'])).code).toBe(0);
    } finally {
      await fresh.destroy();
    }
  });
});
