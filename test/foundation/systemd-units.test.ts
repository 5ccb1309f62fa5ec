/**
 * The systemd units of docs/scale.md (deploy/systemd/) run the same processes as `npm run
 * start:cluster` (runtime/cluster.ts): the migrate step, then one unit per service, each started
 * the way the cluster starts it (`node --import tsx scripts/serve.ts <service>`, one process), and
 * systemd itself accepts them (`systemd-analyze verify`, where the machine has it).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_REPLICAS, SERVICE_NAMES, serveNodeArgs } from '../../runtime/cluster.js';

const DIR = new URL('../../deploy/systemd/', import.meta.url);
const read = (name: string) => fs.readFileSync(new URL(name, DIR), 'utf8');

/** `key=value` lines of a unit, by section (comments and blank lines left out; repeated keys kept in order). */
function parseUnit(text: string): Record<string, [string, string][]> {
  const out: Record<string, [string, string][]> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      out[section] = [];
      continue;
    }
    const eq = line.indexOf('=');
    out[section]!.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}
const values = (unit: Record<string, [string, string][]>, section: string, key: string) => (unit[section] ?? []).filter(([k]) => k === key).map(([, v]) => v);

describe('the systemd units', () => {
  const target = parseUnit(read('paygraph.target'));
  const template = parseUnit(read('paygraph@.service'));
  const migrate = parseUnit(read('paygraph-migrate.service'));

  it('start the processes of the cluster: the migrate step and every service', () => {
    const wants = values(target, 'Unit', 'Wants').flatMap((v) => v.split(/\s+/));
    expect(wants).toContain('paygraph-migrate.service');
    const services = wants.flatMap((w) => /^paygraph@(\w+)\.service$/.exec(w)?.[1] ?? []);
    expect(services.sort()).toEqual([...SERVICE_NAMES].sort());
    expect(Object.keys(DEFAULT_REPLICAS).sort()).toEqual(services.sort());
  });

  it('run each service as the cluster does, one node process, after the migrations', () => {
    const node = ['/usr/bin/node', ...serveNodeArgs({}), 'scripts/serve.ts'].join(' ');
    expect(values(template, 'Service', 'ExecStart')).toEqual([`${node} %i --host 0.0.0.0`]);
    expect(values(migrate, 'Service', 'ExecStart')).toEqual([`${node} migrate`]);
    expect(values(migrate, 'Service', 'Type')).toEqual(['oneshot']);
    expect(values(template, 'Unit', 'Requires')).toEqual(['paygraph-migrate.service']);
    expect(values(template, 'Unit', 'After').join(' ')).toContain('paygraph-migrate.service');
    // Restarted when it crashes, stopped with SIGTERM (paygraph drains, then exits).
    expect(values(template, 'Service', 'Restart')).toEqual(['on-failure']);
    expect(values(template, 'Service', 'KillSignal')).toEqual(['SIGTERM']);
    // Each service its own environment file (its own private key and database role), beside the shared one.
    expect(values(template, 'Service', 'EnvironmentFile')).toEqual(['/etc/paygraph/common.env', '/etc/paygraph/%i.env']);
  });

  const systemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((f) => fs.existsSync(f));
  it.skipIf(!systemdAnalyze || !fs.existsSync('/usr/bin/node'))('pass systemd-analyze verify', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-units-'));
    try {
      for (const f of fs.readdirSync(DIR)) fs.copyFileSync(new URL(f, DIR), path.join(tmp, f));
      const instances = SERVICE_NAMES.map((s) => `paygraph@${s}.service`);
      for (const i of instances) fs.copyFileSync(path.join(tmp, 'paygraph@.service'), path.join(tmp, i));
      const units = ['paygraph.target', 'paygraph-migrate.service', ...instances].map((u) => `./${u}`);
      const { stderr } = await promisify(execFile)(systemdAnalyze!, ['verify', '--man=no', ...units], {
        cwd: tmp,
        env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
      });
      expect(stderr).toBe('');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
