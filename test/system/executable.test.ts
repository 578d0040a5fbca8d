// The executable users run: bin/brnet picks the compiled dist/brnet or the Node fallback, the
// compiled binary ignores files a compiled Bun program would load from the current directory,
// and the Node fallback passes a smoke run of the core (the whole suite runs on dist/brnet).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BRNET_BIN, REPO_ROOT, Sandbox, describeRoot, shellQuote } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

let sb: Sandbox;
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
const NODE = { BRNET_RUNTIME: 'node' };

describeRoot('the executable', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('npm run build made a compiled executable for this machine', () => {
    // A build that silently fell back to Node would run the whole suite on the fallback.
    expect(existsSync(join(REPO_ROOT, 'dist', 'brnet'))).toBe(true);
    expect(readFileSync(join(REPO_ROOT, 'dist', 'brnet')).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  });

  it('bin/brnet runs dist/brnet, Node with BRNET_RUNTIME=node or without dist/brnet, with the same results', async () => {
    const traced = (bin: string, env = '') => sb.exec(['sh', '-c', `${env} sh -x ${shellQuote(bin)} --version`]);
    const compiled = await traced(BRNET_BIN);
    expect(compiled.stderr).toMatch(/exec \S+\/dist\/brnet --version/);
    expect(compiled.stdout).toBe(`${version}\n`);
    const node = await traced(BRNET_BIN, 'BRNET_RUNTIME=node');
    expect(node.stderr).toMatch(/exec \S*node \S+\/bin\/brnet\.js --version/);
    expect(node.stdout).toBe(`${version}\n`);
    // A checkout where Bun has no build for the platform: no dist/brnet, only the bundle.
    const copy = mkdtempSync(join(tmpdir(), 'brnet-launcher-'));
    try {
      mkdirSync(join(copy, 'bin'));
      mkdirSync(join(copy, 'dist'));
      copyFileSync(BRNET_BIN, join(copy, 'bin', 'brnet'));
      copyFileSync(join(REPO_ROOT, 'bin', 'brnet.js'), join(copy, 'bin', 'brnet.js'));
      symlinkSync(join(REPO_ROOT, 'dist', 'cli.js'), join(copy, 'dist', 'cli.js'));
      const fallback = await traced(join(copy, 'bin', 'brnet'));
      expect(fallback.stderr).toMatch(/exec \S*node \S+\/bin\/brnet\.js --version/);
      expect(fallback.stdout).toBe(`${version}\n`);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('a bunfig.toml with a preload and an .env in the current directory change nothing', async () => {
    // By default a compiled Bun program reads both from its working directory, and a preload
    // runs code: root running brnet in a directory someone else can write must run brnet only.
    const dir = mkdtempSync(join(tmpdir(), 'brnet-cwd-'));
    const marker = join(dir, 'preloaded');
    const elsewhere = join(dir, 'state-from-env');
    try {
      writeFileSync(join(dir, 'preload.js'), `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n`);
      writeFileSync(join(dir, 'bunfig.toml'), 'preload = ["./preload.js"]\n[run]\npreload = ["./preload.js"]\n');
      writeFileSync(join(dir, '.env'), `BRNET_STATE_DIR=${elsewhere}\nBRNET_DEBUG=1\n`);
      writeFileSync(join(dir, 'tsconfig.json'), '{"compilerOptions":{"jsx":"preserve"}}\n');
      writeFileSync(join(dir, 'package.json'), '{"name":"x","type":"commonjs"}\n');
      const inDir = (args: string[]) =>
        sb.exec(['sh', '-c', `cd ${shellQuote(dir)} && exec ${shellQuote(join(REPO_ROOT, 'dist', 'brnet'))} ${args.map(shellQuote).join(' ')}`], {
          env: { BRNET_STATE_DIR: sb.stateDir, NO_COLOR: '1' },
        });
      const v = await inDir(['--version']);
      expect(v.code).toBe(0);
      expect(v.stdout).toBe(`${version}\n`);
      const created = await inDir(['network', 'create', 'cwd', '--subnet', '10.91.0.0/24']);
      expect(created.code, created.stderr).toBe(0);
      expect(created.stderr).not.toContain('+ '); // BRNET_DEBUG from .env would trace commands
      expect(existsSync(marker)).toBe(false);
      expect(existsSync(elsewhere)).toBe(false);
      expect(JSON.parse(readFileSync(join(sb.stateDir, 'state.json'), 'utf8')).networks.map((n: { name: string }) => n.name)).toEqual(['cwd']);
      expect((await inDir(['network', 'rm', 'cwd'])).code).toBe(0);
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Node fallback runs the core: create, endpoint with a port, real traffic, check, restore, rm', async () => {
    await sb.brnetOk(['network', 'create', 'fb', '--subnet', '10.92.0.0/24'], { env: NODE });
    await sb.brnetOk(['endpoint', 'add', 'fb', 'srv', '--netns', 'fbsrv', '--create-netns', '-p', '8088:80'], { env: NODE });
    const eps = (await sb.brnetOk(['endpoint', 'ls', '--json'], { env: NODE })).json();
    expect(eps).toMatchObject([{ name: 'srv', network: 'fb', ipv4: '10.92.0.2/24', ports: [{ hostPort: 8088, containerPort: 80, proto: 'tcp' }] }]);
    const client = await sb.addOutsideClient();
    const echo = await startEcho(sb, 'fbsrv', 'tcp', 80);
    try {
      expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8088)).ok).toBe(true);
      await sb.sh('iptables -t nat -F');
      expect((await sb.brnet(['check'], { env: NODE })).code).toBe(1);
      await sb.brnetOk(['restore'], { env: NODE });
      expect((await sb.brnet(['check'], { env: NODE })).code).toBe(0);
      expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8088)).ok).toBe(true);
    } finally {
      await echo.stop();
    }
    // The two runtimes read and write the same state.
    expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout).toBe('fb\n');
    const bad = await sb.brnet(['network', 'create', 'fb2', '--subnet', '10.92.0.0/33'], { env: NODE });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')[0]).toMatch(/^brnet: .*10\.92\.0\.0\/33/);
    await sb.brnetOk(['network', 'rm', '--force', 'fb'], { env: NODE });
    expect(await sb.ipJson(['link', 'show', 'type', 'bridge'])).toEqual([]);
    expect(await sb.iptablesSave(4)).not.toContain('BRNET');
  });
});
