/**
 * `strongroom hsm-agent`: runs beside an HSM, holds its PKCS#11 sessions and serves the cluster
 * member operations to Strongroom nodes over mutual TLS 1.3 (src/keystores/pkcs11/cluster/
 * agent-server.ts). Killing it is, to the cluster, that HSM failing.
 *
 *   strongroom hsm-agent --module /usr/lib/softhsm/libsofthsm2.so --token-label hsm1 \
 *     --pin-file pin.txt --listen 127.0.0.1:7400 --tls-cert agent.pem --tls-key agent.key --tls-ca ca.pem
 *
 * The user PIN comes from --pin-file (first line; the file should be 0600) or the environment
 * variable STRONGROOM_HSM_PIN, never from the command line (visible in `ps`).
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SecretBytes } from '../crypto/secret-bytes.ts';
import { HsmAgentServer } from '../keystores/pkcs11/cluster/agent-server.ts';
import { LocalHsmMember } from '../keystores/pkcs11/cluster/local-member.ts';

export interface HsmAgentCliOptions {
  module: string;
  tokenLabel?: string;
  slot?: number;
  pinFile?: string;
  listen: { host: string; port: number };
  tlsCert: string;
  tlsKey: string;
  tlsCa: string;
  sessions: number;
  inlineCalls?: boolean;
  name?: string;
}

function listenAddress(value: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new InvalidArgumentError('must be HOST:PORT (port 0 picks a free one)');
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 1024) throw new InvalidArgumentError('must be an integer from 1 to 1024');
  return parsed;
}

/** A PIN from the first line of a file, or from STRONGROOM_HSM_PIN. */
export async function readPin(file: string | undefined, variable: string): Promise<SecretBytes> {
  if (file) {
    const bytes = await readFile(file);
    const end = bytes.indexOf(0x0a);
    const line = bytes.subarray(0, end < 0 ? bytes.length : end);
    const trimmed = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
    const pin = SecretBytes.from(trimmed);
    bytes.fill(0);
    if (pin.length === 0) throw new Error(`${file} holds no PIN`);
    return pin;
  }
  const fromEnv = process.env[variable];
  if (!fromEnv) throw new Error(`give the PIN in a file (--pin-file) or in ${variable}`);
  return SecretBytes.from(Buffer.from(fromEnv, 'utf8'));
}

export async function runHsmAgent(options: HsmAgentCliOptions): Promise<void> {
  if ((options.tokenLabel === undefined) === (options.slot === undefined)) throw new Error('name the token with exactly one of --token-label and --slot');
  const pin = await readPin(options.pinFile, 'STRONGROOM_HSM_PIN');
  const [cert, key, ca] = await Promise.all([readFile(options.tlsCert), readFile(options.tlsKey), readFile(options.tlsCa)]);
  const member = new LocalHsmMember({
    name: options.name ?? options.tokenLabel ?? `slot-${options.slot}`,
    modulePath: options.module,
    ...(options.tokenLabel !== undefined ? { tokenLabel: options.tokenLabel } : { slotId: options.slot! }),
    pin,
    sessions: options.sessions,
    ...(options.inlineCalls ? { inlineCalls: true } : {}),
  });
  pin.zero();
  // The token may be absent or refuse the PIN now: the agent still serves, and health says why.
  await member.connect().catch((error: unknown) => log('warn', 'token not connected', { code: (error as { code?: string }).code ?? 'FAILED' }));
  const server = await HsmAgentServer.listen({
    member,
    host: options.listen.host,
    port: options.listen.port,
    cert,
    key,
    ca,
    onEvent: (event) => log(event.kind.startsWith('ceremony-') ? 'info' : 'warn', event.kind, { detail: event.detail }),
  });
  process.stdout.write(`hsm-agent listening on ${options.listen.host}:${server.port}\n`);
  const stop = async (): Promise<void> => {
    await server.close();
    await member.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

function log(level: string, message: string, fields: Record<string, string>): void {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), component: 'hsm-agent', message, ...fields })}\n`);
}

export function registerHsmAgentCommand(program: Command): void {
  program
    .command('hsm-agent')
    .description('serve one PKCS#11 token to Strongroom nodes as a remote HSM cluster member (mutual TLS)')
    .requiredOption('--module <path>', 'the PKCS#11 library')
    .option('--token-label <label>', 'the token, by label')
    .addOption(new Option('--slot <id>', 'the token, by slot id').argParser((value) => positiveIntegerOrZero(value)))
    .option('--pin-file <file>', "file holding the crypto user's PIN (default: $STRONGROOM_HSM_PIN)")
    .addOption(new Option('--listen <host:port>', 'address to serve on').default(listenAddress('127.0.0.1:7400'), '127.0.0.1:7400').argParser(listenAddress))
    .requiredOption('--tls-cert <file>', "the agent's PEM certificate")
    .requiredOption('--tls-key <file>', "the agent's PEM private key")
    .requiredOption('--tls-ca <file>', 'PEM CA that client certificates must chain to')
    .addOption(new Option('--sessions <n>', 'PKCS#11 sessions in the pool').default(8).argParser(positiveInteger))
    .option('--inline-calls', 'encrypt/decrypt on the event loop rather than the thread pool (for a token computing in-process, e.g. SoftHSM)')
    .option('--name <name>', 'member name in logs (default: the token label)')
    .action(async (options: HsmAgentCliOptions) => {
      try {
        await runHsmAgent(options);
      } catch (error) {
        process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      }
    });
}

function positiveIntegerOrZero(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('must be a slot number');
  return parsed;
}
