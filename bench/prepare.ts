/**
 * Pre-signs a pool of KMS requests for wrk (bench/wrk-requests.lua). Starts no server itself.
 *
 *   node --import tsx bench/prepare.ts --endpoint http://127.0.0.1:18373 \
 *     --credentials <dataDir>/credentials --state <file.json> --op encrypt-32 \
 *     [--target http://127.0.0.1:18374] [--count 2000] --out <pool file>
 *
 * On first use (no --state file yet) it creates a symmetric key with the real
 * @aws-sdk/client-kms and encrypts one 32-byte plaintext, and keeps both in the state file; later
 * calls reuse them, so a whole bench run works on one key.
 *
 * The sign-* and verify-* ops work on asymmetric keys (see SIGNING_OPS), each created with the SDK
 * the first time an op needs it and kept in the same state file (one key per key spec, shared by
 * Sign and Verify). A sign-* pool signs a different 32-byte message in each request; a verify-*
 * pool verifies a few 32-byte messages with signatures Strongroom made for them through the SDK
 * beforehand (a signature that did not verify would be a 400, KMSInvalidSignatureException, and
 * so a non-2xx in the bench).
 *
 * Each pooled request is a complete raw HTTP/1.1 request (request line, headers, body) signed
 * with @smithy/signature-v4 exactly as the KMS client signs: POST /, content-type
 * application/x-amz-json-1.1, x-amz-target TrentService.<Op>, host, x-amz-date, content-length,
 * authorization; no x-amz-content-sha256. Signatures are dated now and the server accepts
 * ±5 minutes of skew, so sign right before each wrk run.
 *
 * A state file may also carry an `encryptionContext` (bench/prepare-authz.ts writes such state
 * files, one per access-control case, with a key and a ciphertext made under that context); the
 * Encrypt, Decrypt and GenerateDataKey requests then send it as their EncryptionContext.
 *
 * Pool file format (read by the Lua script): for each request, its byte length in decimal, a
 * newline, then exactly that many bytes. Nothing else.
 *
 * --target sets where the requests will be sent (the Host header); it defaults to --endpoint. The
 * bare baseline server gets the very same requests, only addressed to its own port.
 *
 * Before writing the pool, the first request is sent once to --target and must get a 2xx, so a
 * broken pool (bad signature, wrong header) fails here and not as 15 s of errors.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import type { KeySpec, SigningAlgorithmSpec } from '@aws-sdk/client-kms';
import { HttpRequest } from '@smithy/protocol-http';
import type { SignatureV4 } from '@smithy/signature-v4';
import { kmsSigner } from '../test/support/sigv4-signing.ts';

interface SigningOp {
  keySpec: KeySpec;
  algorithm: SigningAlgorithmSpec;
}

/** Sign and Verify cases: the key spec and signing algorithm of each (names as bench/raw-sign.mjs's). */
const SIGNING_OPS: Record<string, SigningOp> = {
  'rsa2048-pkcs1': { keySpec: 'RSA_2048', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
  'rsa2048-pss': { keySpec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256' },
  p256: { keySpec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256' },
  ed25519: { keySpec: 'ECC_NIST_EDWARDS25519', algorithm: 'ED25519_SHA_512' },
  mldsa44: { keySpec: 'ML_DSA_44', algorithm: 'ML_DSA_SHAKE_256' },
};

const OPS: Record<string, string> = {
  'encrypt-32': 'Encrypt',
  'encrypt-4k': 'Encrypt',
  'decrypt-32': 'Decrypt',
  'generate-data-key': 'GenerateDataKey',
  ...Object.fromEntries(Object.keys(SIGNING_OPS).flatMap((name) => [[`sign-${name}`, 'Sign'], [`verify-${name}`, 'Verify']])),
};

/** How many different (message, signature) pairs a verify-* pool cycles through. */
const VERIFY_MESSAGES = 8;

interface SignedMessage {
  message: string; // base64, 32 bytes
  signature: string; // base64
}

interface State {
  keyId: string;
  ciphertext32: string; // base64
  /** Asymmetric SIGN_VERIFY key id per key spec. */
  signingKeys?: Partial<Record<KeySpec, string>>;
  /** Per signing op name, messages with a signature Strongroom made. */
  signedMessages?: Record<string, SignedMessage[]>;
  /** Sent as EncryptionContext by the symmetric ops (ciphertext32 was made under it). */
  encryptionContext?: Record<string, string>;
}

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    target: { type: 'string' },
    credentials: { type: 'string' },
    state: { type: 'string' },
    op: { type: 'string' },
    count: { type: 'string', default: '2000' },
    out: { type: 'string' },
    region: { type: 'string', default: 'us-east-1' },
    'no-check': { type: 'boolean', default: false },
  },
});

function need(name: string, value: string | undefined): string {
  if (!value) {
    process.stderr.write(`prepare: --${name} is required\n`);
    process.exit(2);
  }
  return value;
}

const endpoint = need('endpoint', args.endpoint);
const target = new URL(args.target ?? endpoint);
const statePath = need('state', args.state);
const op = need('op', args.op);
if (!(op in OPS)) {
  process.stderr.write(`prepare: --op must be one of ${Object.keys(OPS).join(', ')}\n`);
  process.exit(2);
}
const count = Number(args.count);
const out = need('out', args.out);
const region = args.region as string;
const signingOp = /^(?:sign|verify)-(.+)$/.exec(op)?.[1];
const credentials = parseCredentialsFile(readFileSync(need('credentials', args.credentials), 'utf8'));

function parseCredentialsFile(text: string): Credentials {
  const accessKeyId = /aws_access_key_id\s*=\s*(\S+)/.exec(text)?.[1];
  const secretAccessKey = /aws_secret_access_key\s*=\s*(\S+)/.exec(text)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error('credentials file lacks aws_access_key_id / aws_secret_access_key');
  return { accessKeyId, secretAccessKey };
}

/** Creates the key and the 32 B ciphertext once per bench run, with the real SDK. */
async function loadOrCreateState(): Promise<State> {
  if (existsSync(statePath)) return JSON.parse(readFileSync(statePath, 'utf8')) as State;
  const { KMSClient, CreateKeyCommand, EncryptCommand } = await import('@aws-sdk/client-kms');
  const client = new KMSClient({ endpoint, region, credentials, maxAttempts: 1 });
  try {
    const created = await client.send(new CreateKeyCommand({ Description: 'strongroom bench' }));
    const keyId = created.KeyMetadata?.KeyId;
    if (!keyId) throw new Error('CreateKey returned no KeyId');
    const encrypted = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: randomBytes(32) }));
    if (!encrypted.CiphertextBlob) throw new Error('Encrypt returned no CiphertextBlob');
    const state: State = { keyId, ciphertext32: Buffer.from(encrypted.CiphertextBlob).toString('base64') };
    writeFileSync(statePath, JSON.stringify(state));
    return state;
  } finally {
    client.destroy();
  }
}

/**
 * The asymmetric key (and, for verify-*, the signed messages) a signing op needs, created through
 * the SDK the first time and added to the state file.
 */
async function addSigningState(state: State, name: string): Promise<State> {
  const { keySpec, algorithm } = SIGNING_OPS[name];
  const needsSignatures = op.startsWith('verify-');
  if (state.signingKeys?.[keySpec] && (!needsSignatures || state.signedMessages?.[name])) return state;
  const { KMSClient, CreateKeyCommand, SignCommand } = await import('@aws-sdk/client-kms');
  const client = new KMSClient({ endpoint, region, credentials, maxAttempts: 1 });
  try {
    let keyId = state.signingKeys?.[keySpec];
    if (!keyId) {
      const created = await client.send(
        new CreateKeyCommand({ Description: `strongroom bench ${keySpec}`, KeySpec: keySpec, KeyUsage: 'SIGN_VERIFY' }),
      );
      keyId = created.KeyMetadata?.KeyId;
      if (!keyId) throw new Error('CreateKey returned no KeyId');
      state.signingKeys = { ...state.signingKeys, [keySpec]: keyId };
    }
    if (needsSignatures) {
      const signed: SignedMessage[] = [];
      for (let i = 0; i < VERIFY_MESSAGES; i++) {
        const message = randomBytes(32);
        const response = await client.send(
          new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }),
        );
        if (!response.Signature) throw new Error('Sign returned no Signature');
        signed.push({ message: message.toString('base64'), signature: Buffer.from(response.Signature).toString('base64') });
      }
      state.signedMessages = { ...state.signedMessages, [name]: signed };
    }
    writeFileSync(statePath, JSON.stringify(state));
    return state;
  } finally {
    client.destroy();
  }
}

function signingBodyFor(state: State, index: number): string {
  const name = signingOp as string;
  const { keySpec, algorithm } = SIGNING_OPS[name];
  const keyId = state.signingKeys?.[keySpec] as string;
  if (op.startsWith('sign-')) {
    return JSON.stringify({ KeyId: keyId, Message: randomBytes(32).toString('base64'), MessageType: 'RAW', SigningAlgorithm: algorithm });
  }
  const signed = state.signedMessages?.[name] as SignedMessage[];
  const { message, signature } = signed[index % signed.length];
  return JSON.stringify({ KeyId: keyId, Message: message, MessageType: 'RAW', Signature: signature, SigningAlgorithm: algorithm });
}

function bodyFor(state: State, index: number): string {
  if (signingOp !== undefined) return signingBodyFor(state, index);
  const context = state.encryptionContext ? { EncryptionContext: state.encryptionContext } : {};
  switch (op) {
    case 'encrypt-32':
      return JSON.stringify({ KeyId: state.keyId, Plaintext: randomBytes(32).toString('base64'), ...context });
    case 'encrypt-4k':
      return JSON.stringify({ KeyId: state.keyId, Plaintext: randomBytes(4096).toString('base64'), ...context });
    case 'decrypt-32':
      return JSON.stringify({ CiphertextBlob: state.ciphertext32, KeyId: state.keyId, ...context });
    case 'generate-data-key':
      return JSON.stringify({ KeyId: state.keyId, KeySpec: 'AES_256', ...context });
    default:
      throw new Error(`no request body for op ${op}`);
  }
}

async function signOne(signer: SignatureV4, body: string, signingDate: Date): Promise<Buffer> {
  const host = target.host; // hostname:port as wrk connects
  const request = new HttpRequest({
    method: 'POST',
    protocol: target.protocol,
    hostname: target.hostname,
    port: Number(target.port),
    path: '/',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `TrentService.${OPS[op]}`,
      host,
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
  });
  const signed = (await signer.sign(request, { signingDate })) as HttpRequest;
  let head = 'POST / HTTP/1.1\r\n';
  for (const [name, value] of Object.entries(signed.headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(String(value))) throw new Error(`bad header ${name}`);
    head += `${name}: ${value}\r\n`;
  }
  head += '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body, 'utf8')]);
}

/** Sends one raw request over a fresh connection and returns the status line and body. */
function sendRaw(raw: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(target.port), target.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('check request timed out'));
    }, 10_000);
    const finish = () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const headerEnd = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? -1);
      if (headerEnd >= 0 && length >= 0 && Buffer.byteLength(text) >= headerEnd + 4 + length) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status, text });
        return true;
      }
      return false;
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      finish();
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('end', () => {
      if (!finish()) {
        clearTimeout(timer);
        reject(new Error(`incomplete response: ${Buffer.concat(chunks).toString('utf8').slice(0, 500)}`));
      }
    });
    socket.write(raw);
  });
}

// The SDK warns on stderr about Node < 22 support ending; not this bench's concern.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
let state = await loadOrCreateState();
if (signingOp !== undefined) state = await addSigningState(state, signingOp);
// Signed as the KMS client signs: no x-amz-content-sha256.
const signer = kmsSigner({ region, credentials });
const signingDate = new Date();
const pool: Buffer[] = [];
for (let i = 0; i < count; i++) pool.push(await signOne(signer, bodyFor(state, i), signingDate));

if (!args['no-check']) {
  const { status, text } = await sendRaw(pool[0]);
  if (status < 200 || status > 299) {
    process.stderr.write(`prepare: check request for ${op} to ${target.host} got HTTP ${status}:\n${text.slice(0, 1000)}\n`);
    process.exit(1);
  }
}

const parts: Buffer[] = [];
for (const raw of pool) parts.push(Buffer.from(`${raw.length}\n`, 'latin1'), raw);
writeFileSync(out, Buffer.concat(parts));
const sizes = pool.map((raw) => raw.length);
process.stdout.write(
  `prepared ${count} ${op} requests for ${target.host} (${Math.min(...sizes)}-${Math.max(...sizes)} bytes each), ` +
    `signed ${signingDate.toISOString()}\n`,
);
