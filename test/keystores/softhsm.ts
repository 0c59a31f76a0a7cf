/**
 * Real SoftHSMv2 tokens for tests, in a temporary directory of their own.
 *
 * SoftHSM reads SOFTHSM2_CONF, and scans its token directory, at C_Initialize: so there is one
 * configuration per process, set before the module is first loaded, and every token a test file
 * needs is created (as further slots of the one token directory) before any store opens. A token
 * created after C_Initialize is not seen until the module is finalized and initialized again.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pkcs11Module } from '../../src/keystores/pkcs11/module.ts';

export const SOFTHSM_MODULE = process.env.STRONGROOM_TEST_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
export const PKCS11_TOOL = process.env.STRONGROOM_TEST_PKCS11_TOOL ?? 'pkcs11-tool';

export interface TestToken {
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  readonly slotId: bigint;
}

export class SoftHsm {
  private static instance: SoftHsm | undefined;
  readonly tokens = new Map<string, TestToken>();

  private constructor(
    readonly dir: string,
    readonly conf: string,
  ) {}

  /** The process's SoftHSM configuration, made on first use. */
  static get(): SoftHsm {
    if (SoftHsm.instance) return SoftHsm.instance;
    if (Pkcs11Module.users(SOFTHSM_MODULE) > 0) throw new Error('SoftHSM was initialized before its test configuration was set');
    const dir = mkdtempSync(join(tmpdir(), 'strongroom-softhsm-'));
    const tokens = join(dir, 'tokens');
    mkdirSync(tokens, { mode: 0o700 });
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(
      conf,
      [`directories.tokendir = ${tokens}`, 'objectstore.backend = file', 'log.level = ERROR', 'slots.removable = false', ''].join('\n'),
      { mode: 0o600 },
    );
    process.env.SOFTHSM2_CONF = conf;
    SoftHsm.instance = new SoftHsm(dir, conf);
    process.on('exit', () => SoftHsm.instance?.cleanup());
    return SoftHsm.instance;
  }

  /** A new token in the next free slot. Only before the module is loaded (see above). */
  createToken(label: string, pin = `user-${label}-0000`, soPin = `so-${label}-0000`): TestToken {
    if (Pkcs11Module.users(SOFTHSM_MODULE) > 0) throw new Error('create tokens before opening any store: SoftHSM scans at C_Initialize');
    const output = execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
      env: { ...process.env, SOFTHSM2_CONF: this.conf },
      encoding: 'utf8',
    });
    const slot = /reassigned to slot (\d+)/.exec(output);
    if (!slot) throw new Error(`softhsm2-util said: ${output}`);
    const token = { label, pin, soPin, slotId: BigInt(slot[1]) };
    this.tokens.set(label, token);
    return token;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ListedObject {
  readonly kind: string;
  readonly label?: string;
  readonly id?: string;
  readonly usage: string[];
  readonly access: string[];
}

/**
 * What opensc's pkcs11-tool — an independent PKCS#11 client — lists on the token after a user
 * login. Parses its `--list-objects` blocks:
 *   Secret Key Object; AES length 32
 *     label:      strongroom:…
 *     ID:         0123…
 *     Usage:      encrypt, decrypt
 *     Access:     sensitive, always sensitive, never extractable, local
 */
export function listObjects(token: TestToken, conf: string = SoftHsm.get().conf): ListedObject[] {
  const output = execFileSync(
    PKCS11_TOOL,
    ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--login', '--pin', token.pin, '--list-objects'],
    { env: { ...process.env, SOFTHSM2_CONF: conf }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const objects: Array<{ kind: string; label?: string; id?: string; usage: string[]; access: string[] }> = [];
  for (const line of output.split('\n')) {
    if (/^\S.*Object;/.test(line)) {
      objects.push({ kind: line.trim(), usage: [], access: [] });
      continue;
    }
    const field = /^\s+(\w+):\s*(.*)$/.exec(line);
    const current = objects.at(-1);
    if (!field || !current) continue;
    const [, name, value] = field;
    const list = value.split(',').map((item) => item.trim()).filter(Boolean);
    if (name === 'label') current.label = value.trim();
    else if (name === 'ID') current.id = value.trim().toLowerCase();
    else if (name === 'Usage') current.usage = list;
    else if (name === 'Access') current.access = list;
  }
  return objects;
}

/**
 * A token with a SoftHSM configuration of its own, for a member served by another process (an
 * hsm-agent child): "one SoftHSMv2 configuration per member". This process never loads it.
 */
export interface StandaloneToken {
  readonly token: TestToken;
  readonly conf: string;
  readonly dir: string;
  cleanup(): void;
}

export function createStandaloneToken(label: string, pin = `user-${label}-0000`, soPin = `so-${label}-0000`): StandaloneToken {
  const dir = mkdtempSync(join(tmpdir(), `strongroom-softhsm-${label}-`));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, [`directories.tokendir = ${tokens}`, 'objectstore.backend = file', 'log.level = ERROR', ''].join('\n'), { mode: 0o600 });
  const output = execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    encoding: 'utf8',
  });
  const slot = /reassigned to slot (\d+)/.exec(output);
  if (!slot) throw new Error(`softhsm2-util said: ${output}`);
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);
  return { token: { label, pin, soPin, slotId: BigInt(slot[1]) }, conf, dir, cleanup };
}
