// --format's template subset and --filter, as data.
import { describe, expect, it } from 'vitest';
import { matches, parseFilters } from '../../src/core/network-filter.ts';
import { BrnetError } from '../../src/errors.ts';
import { parseTemplate } from '../../src/ui/format.ts';
import { networkFields } from '../../src/ui/network-fields.ts';
import type { Network } from '../../src/state/schema.ts';
import { ep, net } from '../fixtures/state.ts';

const web = net('web', 'a', { labels: { team: 'ops', env: 'prod' } });
const db = net('db', 'b', { internal: true, ipv4: null, ipv6: { subnet: 'fd00:1::/64', gateway: 'fd00:1::1', ipRange: null, auxAddresses: {}, allocated: false }, endpoints: [ep('pg', '10.1.0.2/24')] });
const nets = [web, db];

const render = (format: string, items: Network[] = nets, idLength: 12 | 64 = 12) =>
  parseTemplate(format, networkFields(idLength))!.render(items, (n) => ({ name: n.name }));

function usage(fn: () => unknown): BrnetError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BrnetError);
    expect((e as BrnetError).exitCode).toBe(2);
    return e as BrnetError;
  }
  throw new Error('expected an error');
}

describe('--format', () => {
  it.each([
    ['{{.Name}}', 'web\ndb\n'],
    ['{{.Name}} {{.ID}}', `web ${'a'.repeat(12)}\ndb ${'b'.repeat(12)}\n`],
    ['{{ .Name }}:{{.Driver}}/{{.Scope}}', 'web:bridge/local\ndb:bridge/local\n'],
    ['{{.Name}}\\t{{.Internal}}\\t{{.IPv4}}\\t{{.IPv6}}', 'web\tfalse\ttrue\tfalse\ndb\ttrue\tfalse\ttrue\n'],
    ['{{.Subnets}} {{.Endpoints}} {{.Labels}}', '10.1.0.0/24 0 team=ops,env=prod\nfd00:1::/64 1 \n'],
    ['{{json .Name}} {{json .Internal}}', '"web" false\n"db" true\n'],
    ['{{json .}}', '{"name":"web"}\n{"name":"db"}\n'],
    ['json', '{"name":"web"}\n{"name":"db"}\n'],
    ['{{.Bridge}}', `br-${'a'.repeat(12)}\nbr-${'b'.repeat(12)}\n`],
    ['name: {{.Name}}\\n', 'name: web\n\nname: db\n\n'],
  ])('%s', (format, out) => {
    expect(render(format)).toBe(out);
  });

  it('.ID is 12 digits for ls and 64 for inspect; .Id always 64', () => {
    expect(render('{{.ID}}', [web], 64)).toBe(`${web.id}\n`);
    expect(render('{{.Id}}', [web], 12)).toBe(`${web.id}\n`);
  });

  it('table: a header, columns aligned as tabwriter (at least 10, 3 apart)', () => {
    expect(render('table {{.Name}}\\t{{.ID}}\\t{{.Endpoints}}')).toBe(
      ['NAME      NETWORK ID     ENDPOINTS', `web       ${'a'.repeat(12)}   0`, `db        ${'b'.repeat(12)}   1`, ''].join('\n'),
    );
    expect(render('table {{json .}}', [web])).toBe('JSON\n{"name":"web"}\n');
    expect(parseTemplate('table', networkFields(12))).toBeNull();
  });

  it.each([
    ['{{.Nope}}', /no field \.Nope/],
    ['{{.name}}', /no field \.name/],
    ['{{.}}', /use \{\{json \.\}\}/],
    ['{{range .}}{{.Name}}{{end}}', /\{\{range \.\}\} is not supported/],
    ['{{.Name | upper}}', /not supported/],
    ['{{.Name}', /unbalanced/],
    ['{{- .Name}}', /not supported/],
    ['{{.Label "team"}}', /not supported/],
  ])('%s is refused (2)', (format, message) => {
    expect(usage(() => render(format)).message).toMatch(message);
  });
});

describe('--filter', () => {
  const pick = (...given: string[]) => nets.filter((n) => matches(n, parseFilters(given, ['name', 'id', 'label', 'driver', 'internal']))).map((n) => n.name);
  it.each([
    [[], ['web', 'db']],
    [['name=we'], ['web']],
    [['name=d'], ['db']],
    [['name=b'], ['web', 'db']],
    [['name=web', 'name=db'], ['web', 'db']],
    [['id=aaaa'], ['web']],
    [['label=team'], ['web']],
    [['label=team=ops'], ['web']],
    [['label=team=dev'], []],
    [['label=team', 'label=env=prod'], ['web']],
    [['label=team', 'label=nope'], []],
    [['driver=bridge'], ['web', 'db']],
    [['driver=overlay'], []],
    [['internal=true'], ['db']],
    [['internal=FALSE'], ['web']],
    [['internal=1', 'name=web'], []],
  ])('%j', (given, names) => {
    expect(pick(...given)).toEqual(names);
  });

  it.each([
    [['nope=1'], /unknown filter "nope"/],
    [['name'], /the form is name=VALUE/],
    [['name='], /the form is name=VALUE/],
    [['internal=maybe'], /internal is true or false/],
    [['label==x'], /label=KEY or label=KEY=VALUE/],
  ])('%j is refused (2)', (given, message) => {
    expect(usage(() => parseFilters(given, ['name', 'id', 'label', 'driver', 'internal'])).message).toMatch(message);
  });

  it('prune takes label only', () => {
    expect(usage(() => parseFilters(['name=web'], ['label'])).hint).toBe('filters: label=');
  });
});
