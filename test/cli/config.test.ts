/**
 * `strongroom serve`'s settings: flags > STRONGROOM_* environment > --config file > defaults,
 * each value checked at start with an error that names the setting and where it came from but
 * never repeats the value.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, SERVE_SETTINGS, resolveServeConfig } from '../../src/cli/config.ts';
import { STRONGROOM_BIN, removeDataDir, startServer } from '../support/server.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(name: string, content: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('serve settings: precedence', () => {
  it('takes defaults when nothing is set', async () => {
    const { options, sources } = await resolveServeConfig({ flags: {}, env: {} });
    assert.equal(options.port, 7373);
    assert.equal(options.host, '127.0.0.1');
    assert.equal(options.workers, 1);
    assert.equal(options.drainTimeoutSeconds, 10);
    assert.equal(options.metricsPort, undefined);
    assert.equal(options.metricsHost, '127.0.0.1');
    assert.equal(options.logRequests, false);
    assert.equal(sources.port, 'default');
  });

  const cases: { title: string; flag?: number; env?: string; file?: number; expected: number; source: string }[] = [
    { title: 'the file over the default', file: 7001, expected: 7001, source: 'file' },
    { title: 'the environment over the file', env: '7002', file: 7001, expected: 7002, source: 'env' },
    { title: 'a flag over the environment and the file', flag: 7003, env: '7002', file: 7001, expected: 7003, source: 'flag' },
  ];
  for (const c of cases) {
    it(`takes ${c.title}`, async () => {
      const file = c.file === undefined ? undefined : await configFile(`precedence-${c.expected}.json`, { port: c.file, logRequests: true });
      const { options, sources } = await resolveServeConfig({
        flags: c.flag === undefined ? {} : { port: c.flag },
        env: c.env === undefined ? {} : { STRONGROOM_PORT: c.env },
        configFile: file,
      });
      assert.equal(options.port, c.expected);
      assert.equal(sources.port, c.source);
      if (file) assert.equal(options.logRequests, true);
    });
  }

  it('reads the file named by STRONGROOM_CONFIG, and --config over it', async () => {
    const fromEnv = await configFile('env-named.json', { region: 'eu-west-1' });
    const fromFlag = await configFile('flag-named.json', { region: 'ap-south-1' });
    assert.equal((await resolveServeConfig({ flags: {}, env: { STRONGROOM_CONFIG: fromEnv } })).options.region, 'eu-west-1');
    assert.equal(
      (await resolveServeConfig({ flags: {}, env: { STRONGROOM_CONFIG: fromEnv }, configFile: fromFlag })).options.region,
      'ap-south-1',
    );
  });

  it('reads every kind of value from the environment', async () => {
    const { options } = await resolveServeConfig({
      flags: {},
      env: {
        STRONGROOM_WORKERS: 'auto',
        STRONGROOM_LOG_REQUESTS: 'true',
        STRONGROOM_LOG_LEVEL: 'debug',
        STRONGROOM_METRICS_PORT: '9100',
        STRONGROOM_DRAIN_TIMEOUT: '3',
        STRONGROOM_XKS_PROXY_ADDRESS: 'proxy.example=10.0.0.1:443,10.0.0.2:443 other.example=10.0.0.3:443',
        STRONGROOM_QUOTA: 'symmetric=100  control=5',
      },
    });
    assert.ok(options.workers >= 1);
    assert.equal(options.logRequests, true);
    assert.equal(options.logLevel, 'debug');
    assert.equal(options.metricsPort, 9100);
    assert.equal(options.drainTimeoutSeconds, 3);
    assert.deepEqual(options.xksProxyAddresses, ['proxy.example=10.0.0.1:443,10.0.0.2:443', 'other.example=10.0.0.3:443']);
    assert.deepEqual(options.quotas, ['symmetric=100', 'control=5']);
  });

  it("resolves relative paths in the file against the file's directory", async () => {
    const file = await configFile('paths.json', { dataDir: 'state', tlsCert: 'tls/cert.pem', tlsKey: '/etc/key.pem' });
    const { options } = await resolveServeConfig({ flags: {}, env: {}, configFile: file });
    assert.equal(options.dataDir, join(dir, 'state'));
    assert.equal(options.tlsCert, join(dir, 'tls/cert.pem'));
    assert.equal(options.tlsKey, '/etc/key.pem');
  });

  it('is documented: docs/configuration.md names every flag, variable and file key', async () => {
    const doc = await readFile(join(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
    for (const setting of SERVE_SETTINGS) {
      for (const name of [setting.flag, setting.env, setting.key]) assert.ok(doc.includes(`\`${name}\``), `${name} is documented`);
    }
  });

  it('has an environment variable for every setting, all distinct', () => {
    const names = SERVE_SETTINGS.map((setting) => setting.env);
    assert.equal(new Set(names).size, names.length);
    for (const name of names) assert.match(name, /^STRONGROOM_[A-Z_]+$/);
  });
});

describe('serve settings: validation', () => {
  const secretLooking = 'hunter2-not-a-port';
  const cases: { title: string; env?: Record<string, string>; file?: unknown; flags?: Record<string, unknown>; message: RegExp }[] = [
    { title: 'a non-integer port in the environment', env: { STRONGROOM_PORT: secretLooking }, message: /^STRONGROOM_PORT: must be an integer from 0 to 65535$/ },
    { title: 'an out-of-range port in the file', file: { port: 70000 }, message: /^"port" in config file .*: must be an integer from 0 to 65535$/ },
    { title: 'a string where the file needs a number', file: { port: '7373' }, message: /^"port" in config file .*: must be a number$/ },
    { title: 'an unknown log level', env: { STRONGROOM_LOG_LEVEL: secretLooking }, message: /^STRONGROOM_LOG_LEVEL: must be one of fatal, error, warn, info, debug$/ },
    { title: 'a boolean that is not one', env: { STRONGROOM_LOG_REQUESTS: secretLooking }, message: /^STRONGROOM_LOG_REQUESTS: must be true or false$/ },
    { title: 'an unknown key in the file', file: { prot: 1 }, message: /unknown setting "prot"/ },
    { title: 'a file that is not JSON', file: `{"port": "${secretLooking}`, message: /: not valid JSON$/ },
    { title: 'a file that is not an object', file: [1, 2], message: /must be a JSON object of settings$/ },
    { title: 'a certificate without its key', env: { STRONGROOM_TLS_CERT: '/etc/cert.pem' }, message: /^STRONGROOM_TLS_CERT: --tls-cert and --tls-key go together$/ },
    { title: 'a region that is not one', env: { STRONGROOM_REGION: secretLooking }, message: /^STRONGROOM_REGION: must look like an AWS region name/ },
    { title: 'the metrics port equal to the KMS port', flags: { port: 9000 }, env: { STRONGROOM_METRICS_PORT: '9000' }, message: /^STRONGROOM_METRICS_PORT: must differ from the KMS port$/ },
    { title: 'a quota that is not one', file: { quota: ['symmetric=0'] }, message: /^"quota" in config file .*: --quota symmetric=0: expected aws, or CLASS=RATE/ },
    { title: 'zero workers', env: { STRONGROOM_WORKERS: '0' }, message: /^STRONGROOM_WORKERS: must be an integer from 1 to 256$/ },
    { title: 'a negative drain timeout', file: { drainTimeout: -1 }, message: /^"drainTimeout" in config file .*: must be an integer from 0 to 3600$/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.title}, naming the setting and not the value`, async () => {
      const file = c.file === undefined ? undefined : await configFile(`invalid-${cases.indexOf(c)}.json`, c.file);
      await assert.rejects(resolveServeConfig({ flags: c.flags ?? {}, env: c.env ?? {}, configFile: file }), (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, c.message);
        assert.ok(!error.message.includes(secretLooking), error.message);
        return true;
      });
    });
  }

  it('refuses a config file it cannot read', async () => {
    await assert.rejects(resolveServeConfig({ flags: {}, env: {}, configFile: join(dir, 'absent.json') }), /config file .*absent\.json: cannot be read \(ENOENT\)/);
  });
});

describe('strongroom serve with a config file and the environment', () => {
  it('exits at start with the setting named when a value is invalid', () => {
    const result = spawnSync(process.execPath, [STRONGROOM_BIN, 'serve', '--data-dir', join(dir, 'never-made')], {
      env: { ...process.env, STRONGROOM_DRAIN_TIMEOUT: 'soon-ish' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /STRONGROOM_DRAIN_TIMEOUT: must be an integer from 0 to 3600/);
    assert.ok(!result.stderr.includes('soon-ish'));
  });

  it('serves with settings from the file and the environment, flags winning', async () => {
    const file = await configFile('serve.json', { metricsPort: 0, region: 'eu-west-1', drainTimeout: 2 });
    const server = await startServer({ args: ['--config', file], env: { STRONGROOM_METRICS_HOST: '127.0.0.1', STRONGROOM_REGION: 'eu-central-1' } });
    try {
      // --region (the test helper passes it) beats the environment and the file.
      assert.match(server.output(), /region us-east-1/);
      // metricsPort came from the file, its host from the environment.
      assert.match(server.metricsEndpoint ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await fetch(`${server.metricsEndpoint}/healthz`)).status, 200);
    } finally {
      await server.stop();
      await removeDataDir(server.dataDir);
    }
  });
});

describe('strongroom serve with a database it cannot reach', () => {
  const PASSWORD = 'pw-canary-90a1';
  const serveWith = (env: Record<string, string>, args: string[] = []) =>
    spawnSync(process.execPath, [STRONGROOM_BIN, 'serve', '--data-dir', join(dir, `unreachable-${Object.keys(env).length}-${args.length}`), '--port', '0', ...args], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });

  /** A loopback port nothing listens on: one the OS just handed out and took back. */
  async function closedPort(): Promise<number> {
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
    const { port } = server.address() as { port: number };
    await new Promise<void>((done) => server.close(() => done()));
    return port;
  }

  it('names --database when nothing listens there, without the password', async () => {
    const port = await closedPort();
    const result = serveWith({}, ['--database', `postgres://strongroom:${PASSWORD}@127.0.0.1:${port}/kms`]);
    assert.equal(result.status, 2);
    assert.equal(result.stderr, `strongroom: cannot reach the database given by --database (STRONGROOM_DATABASE): connect ECONNREFUSED 127.0.0.1:${port}\n`);
    assert.ok(!(result.stdout + result.stderr).includes(PASSWORD));
  });

  it('names the setting when PostgreSQL refuses the role given in STRONGROOM_DATABASE', () => {
    const postgres = new URL(process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
    postgres.username = 'no_such_role_5c2e';
    postgres.password = PASSWORD;
    const result = serveWith({ STRONGROOM_DATABASE: postgres.toString() });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^strongroom: cannot reach the database given by --database \(STRONGROOM_DATABASE\): .*no_such_role_5c2e/);
    assert.ok(!(result.stdout + result.stderr).includes(PASSWORD));
  });
});
