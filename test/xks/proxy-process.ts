/**
 * Test support for the XKS proxy: a SoftHSMv2 token with keys made by opensc's pkcs11-tool (and
 * one made through pkcs11js where pkcs11-tool cannot set the usage), `strongroom xks-proxy` as a
 * child process, and curl's own SigV4 signing (`--aws-sigv4`) as the independent client.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pkcs11js from 'pkcs11js';
import { Pkcs11Token } from '../../src/keystores/pkcs11/module.ts';
import { PKCS11_TOOL, SOFTHSM_MODULE, SoftHsm, type TestToken } from '../keystores/softhsm.ts';

const repoRoot = resolve(import.meta.dirname, '../..');
const STRONGROOM_BIN = join(repoRoot, 'bin/strongroom.mjs');

export interface Credential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** A credential in the spec's formats: 20–30 of A–Z2–7, and 43–64 of base64 characters (256 bits). */
export function newCredential(): Credential {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const accessKeyId = Array.from(randomBytes(24), (byte) => alphabet[byte % 32]).join('');
  return { accessKeyId, secretAccessKey: randomBytes(32).toString('base64') };
}

export function writePrivate(path: string, text: string): string {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

function pkcs11Tool(token: TestToken, args: string[]): string {
  return execFileSync(PKCS11_TOOL, ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--login', '--pin', token.pin, ...args], {
    env: { ...process.env, SOFTHSM2_CONF: SoftHsm.get().conf },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** An AES key generated in the token by pkcs11-tool (sensitive, never extractable). */
export function generateAesKey(token: TestToken, label: string, bytes: 16 | 32 = 32): void {
  pkcs11Tool(token, ['--keygen', '--key-type', `AES:${bytes}`, '--label', label, '--sensitive']);
}

/** An AES-256 key whose value the test knows, written into the token: the independent check of the GCM output. */
export function importAesKey(token: TestToken, label: string, value: Buffer, dir: string): void {
  const file = join(dir, `${label}.key`);
  writeFileSync(file, value, { mode: 0o600 });
  pkcs11Tool(token, ['--write-object', file, '--type', 'secrkey', '--key-type', 'AES:32', '--label', label]);
}

/** An AES-256 key that may wrap but not encrypt or decrypt (pkcs11-tool sets every usage on secret keys). */
export async function generateWrapOnlyKey(token: TestToken, label: string): Promise<void> {
  const opened = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions: 1 });
  try {
    await opened.withSession((session) =>
      opened.api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ENCRYPT, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: false },
        { type: pkcs11js.CKA_WRAP, value: true },
        { type: pkcs11js.CKA_UNWRAP, value: true },
      ]),
    );
  } finally {
    await opened.close();
  }
}

export interface RunningProxy {
  readonly url: string;
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `strongroom xks-proxy ARGS` on a free loopback port; resolves at its "listening on" line. */
export async function startProxy(args: string[], timeoutMs = 30_000): Promise<RunningProxy> {
  const child = spawn(process.execPath, [STRONGROOM_BIN, 'xks-proxy', '--port', '0', ...args], {
    cwd: repoRoot,
    env: { ...process.env, SOFTHSM2_CONF: SoftHsm.get().conf },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`xks-proxy did not start in time:\n${output}`));
    }, timeoutMs);
    child.stdout.on('data', () => {
      const match = /listening on (https?:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        done(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`xks-proxy exited with code ${code} before listening:\n${output}`));
    });
  });
  return {
    url,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs `strongroom xks-proxy ARGS` expecting it to refuse to start; returns its exit code and output. */
export async function failedStart(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [STRONGROOM_BIN, 'xks-proxy', '--port', '0', ...args], {
    cwd: repoRoot,
    env: { ...process.env, SOFTHSM2_CONF: SoftHsm.get().conf },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((done) => child.once('exit', (exitCode) => done(exitCode)));
  clearTimeout(timer);
  return { code, output };
}

export interface CurlOptions {
  readonly credential?: Credential;
  /** `aws:amz:REGION:SERVICE`; default us-east-1 and kms-xks-proxy. */
  readonly sigv4?: string;
  readonly method?: string;
  /** Further curl arguments (TLS files). */
  readonly extra?: readonly string[];
}

export interface CurlResult {
  readonly status: number;
  readonly json: Record<string, unknown>;
  /** curl's exit code (0 unless the connection itself failed). */
  readonly exitCode: number | null;
  readonly stderr: string;
}

/** One request signed by curl itself; the body goes on stdin. */
export async function curl(url: string, body: string | undefined, options: CurlOptions = {}): Promise<CurlResult> {
  const args = ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}'];
  if (options.credential) {
    args.push('--aws-sigv4', options.sigv4 ?? 'aws:amz:us-east-1:kms-xks-proxy', '--user', `${options.credential.accessKeyId}:${options.credential.secretAccessKey}`);
  }
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', '@-');
  if (options.method) args.push('-X', options.method);
  args.push(...(options.extra ?? []), url);
  const child = spawn('curl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(body ?? '');
  const exitCode = await new Promise<number | null>((done) => child.once('close', (code) => done(code)));
  const newline = stdout.lastIndexOf('\n');
  const status = Number(stdout.slice(newline + 1));
  const text = stdout.slice(0, Math.max(newline, 0));
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { unparsed: text };
  }
  return { status, json, exitCode, stderr };
}
