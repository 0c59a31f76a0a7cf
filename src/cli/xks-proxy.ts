/**
 * `strongroom xks-proxy`: the XKS proxy server (src/transports/xks-proxy) in front of a PKCS#11
 * token. This file is the composition root: the transport may not import the key stores
 * (test/architecture/layers.test.ts), so the HSM side of the proxy — find an AES key by its
 * CKA_LABEL, AES-GCM in the token — is written here against the PKCS#11 key store's token and
 * session pool (src/keystores/pkcs11/module.ts), and handed to the transport as an HsmBackend.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import pkcs11js from 'pkcs11js';
import { CryptoError } from '../crypto/errors.ts';
import { CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_GENERAL_ERROR, Pkcs11Error, call, callAsync, returnValueOf } from '../keystores/pkcs11/errors.ts';
import { Pkcs11Token, type Handle } from '../keystores/pkcs11/module.ts';
import { XksAuditLog } from '../transports/xks-proxy/audit-log.ts';
import { XksConfigError, loadXksProxyConfig, readPrivateFile, type XksProxyConfig, type XksProxyFlags } from '../transports/xks-proxy/config.ts';
import { HsmFailure, type EkmHealth, type GcmSealed, type HsmBackend, type HsmKeyInfo } from '../transports/xks-proxy/hsm-backend.ts';
import { startXksProxyServer } from '../transports/xks-proxy/server.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const CKK_AES = 0x1f;
// C_Decrypt's answer to a tag that does not verify: CKR_ENCRYPTED_DATA_INVALID per PKCS#11 v2.40;
// SoftHSMv2 2.6.1 answers CKR_GENERAL_ERROR (measured, as the PKCS#11 key store notes).
const AUTHENTICATION_FAILURES = new Set([CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_GENERAL_ERROR]);
// SoftHSM refuses a NULL data pointer (an empty Buffer); a zero-length view of an allocation has one.
const EMPTY_INPUT = Buffer.alloc(1).subarray(0, 0);
const HEALTH_CHECK_AAD = Buffer.from('strongroom xks-proxy health check');
const UNAVAILABLE_CODES = new Set(['DEVICE_REMOVED', 'DEVICE_ERROR', 'TOKEN_NOT_PRESENT', 'SESSION_INVALID', 'NOT_LOGGED_IN', 'CLOSED', 'SESSION_LIMIT']);

interface CachedKey {
  readonly object: Handle;
  readonly info: HsmKeyInfo;
  readonly epoch: number;
}

/**
 * AES-256-GCM with token-resident keys named by CKA_LABEL (as the reference XKS proxy names them).
 * IVs are 96 bits from the token's RNG (C_GenerateRandom), fresh per encryption: SoftHSM cannot
 * generate GCM IVs itself. Random 96-bit IVs bound one key to 2^32 encryptions (NIST SP 800-38D
 * §8.3; IV-collision chance below 2^-32). That is 28 days at the full default XKS quota (1800 TPS),
 * so docs/xks-proxy.md tells operators to budget keys by their Encrypt count; a shared counter
 * across a proxy fleet is not something this process can keep.
 */
export class Pkcs11XksBackend implements HsmBackend {
  readonly #keys = new Map<string, CachedKey>();

  constructor(
    private readonly token: Pkcs11Token,
    /** The key the deep health check encrypts and decrypts with (the first mapped key). */
    private readonly healthKeyLabel: string | undefined,
  ) {}

  async describeKey(label: string): Promise<HsmKeyInfo | undefined> {
    try {
      return await this.token.withSession((session) => this.#key(session, label).info);
    } catch (error) {
      if (error instanceof Pkcs11Error && error.code === 'KEY_NOT_FOUND') return undefined;
      throw failure(error);
    }
  }

  async encrypt(label: string, plaintext: Buffer, aad: Buffer): Promise<GcmSealed> {
    const api = this.token.api;
    const input = plaintext.length === 0 ? EMPTY_INPUT : plaintext;
    const out = Buffer.alloc(plaintext.length + TAG_BYTES);
    const initializationVector = await this.#withKey(label, async (session, object) => {
      const iv = call('C_GenerateRandom', () => api.C_GenerateRandom(session, Buffer.alloc(IV_BYTES)));
      call('C_EncryptInit', () => api.C_EncryptInit(session, gcm(iv, aad), object));
      const sealed = await callAsync('C_Encrypt', () => api.C_EncryptAsync(session, input, out));
      if (sealed.length !== out.length) throw new Pkcs11Error('FAILED', 'PKCS#11 C_Encrypt returned an unexpected length');
      return iv;
    });
    // CKM_AES_GCM appends the tag to the ciphertext; XKS returns them apart (spec, Encrypt response).
    return {
      initializationVector,
      ciphertext: out.subarray(0, plaintext.length),
      authenticationTag: out.subarray(plaintext.length),
    };
  }

  async decrypt(label: string, sealed: GcmSealed, aad: Buffer): Promise<Buffer> {
    const api = this.token.api;
    const input = Buffer.concat([sealed.ciphertext, sealed.authenticationTag]);
    // SoftHSM wants room for the whole input (CKR_BUFFER_TOO_SMALL for exactly n bytes).
    const out = Buffer.alloc(input.length);
    return this.#withKey(label, async (session, object) => {
      call('C_DecryptInit', () => api.C_DecryptInit(session, gcm(sealed.initializationVector, aad), object));
      try {
        return await api.C_DecryptAsync(session, input, out);
      } catch (error) {
        out.fill(0);
        const rv = returnValueOf(error);
        // A CryptoError leaves the session in the pool: C_Decrypt ended the operation (v2.40 §5.9).
        if (rv !== undefined && AUTHENTICATION_FAILURES.has(rv)) throw new CryptoError('the tag did not verify');
        throw error;
      }
    });
  }

  /** Token info plus, when a key is mapped, a GCM round trip through it: real crypto, not a ping. */
  async health(): Promise<EkmHealth> {
    const api = this.token.api;
    let info: pkcs11js.TokenInfo | undefined;
    let healthStatus: 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE' = 'ACTIVE';
    try {
      // Through the pool, so a closed token is reported rather than called.
      const probe = await this.token.withSession((session) => {
        info = call('C_GetTokenInfo', () => api.C_GetTokenInfo(this.token.slot));
        return call('C_GenerateRandom', () => api.C_GenerateRandom(session, Buffer.alloc(32)));
      });
      if (this.healthKeyLabel !== undefined) {
        const sealed = await this.encrypt(this.healthKeyLabel, probe, HEALTH_CHECK_AAD);
        const back = await this.decrypt(this.healthKeyLabel, sealed, HEALTH_CHECK_AAD);
        if (!back.equals(probe)) healthStatus = 'UNAVAILABLE';
      }
    } catch (error) {
      const kind = failure(error).kind;
      // A missing health key or a saturated pool is not a dead HSM.
      healthStatus = kind === 'BUSY' || kind === 'KEY_NOT_FOUND' ? 'DEGRADED' : 'UNAVAILABLE';
    }
    const token = info as pkcs11js.TokenInfo | undefined;
    return {
      vendor: token?.manufacturerID.trim() || 'unknown',
      members: [
        {
          id: token ? `${token.label.trim()}:${token.serialNumber.trim()}` : 'unknown',
          model: token?.model.trim() || 'unknown',
          healthStatus,
        },
      ],
    };
  }

  async close(): Promise<void> {
    this.#keys.clear();
    await this.token.close();
  }

  /** fn with a session and the label's object; a stale cached handle is looked up again once. */
  async #withKey<T>(label: string, fn: (session: Handle, object: Handle) => Promise<T>): Promise<T> {
    try {
      return await this.token.withSession(async (session) => {
        const cached = this.#fresh(label);
        try {
          return await fn(session, (cached ?? this.#key(session, label)).object);
        } catch (error) {
          if (!cached || !(error instanceof Pkcs11Error) || error.code !== 'KEY_NOT_FOUND') throw error;
          this.#keys.delete(label);
          return fn(session, this.#key(session, label).object);
        }
      });
    } catch (error) {
      throw failure(error);
    }
  }

  #fresh(label: string): CachedKey | undefined {
    const cached = this.#keys.get(label);
    if (cached && cached.epoch === this.token.handleEpoch) return cached;
    this.#keys.delete(label);
    return undefined;
  }

  /** The one secret-key token object with this CKA_LABEL, and what it may do. */
  #key(session: Handle, label: string): CachedKey {
    const cached = this.#fresh(label);
    if (cached) return cached;
    const api = this.token.api;
    call('C_FindObjectsInit', () =>
      api.C_FindObjectsInit(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_LABEL, value: label },
      ]),
    );
    let found: Handle[];
    try {
      found = call('C_FindObjects', () => api.C_FindObjects(session, 2));
    } finally {
      call('C_FindObjectsFinal', () => api.C_FindObjectsFinal(session));
    }
    if (found.length === 0) throw new Pkcs11Error('KEY_NOT_FOUND', 'no secret key object has the label');
    if (found.length > 1) throw new Pkcs11Error('KEY_AMBIGUOUS', 'more than one secret key object has the label');
    const attributes = call('C_GetAttributeValue', () =>
      api.C_GetAttributeValue(session, found[0], [
        { type: pkcs11js.CKA_KEY_TYPE },
        { type: pkcs11js.CKA_VALUE_LEN },
        { type: pkcs11js.CKA_ENCRYPT },
        { type: pkcs11js.CKA_DECRYPT },
        { type: pkcs11js.CKA_WRAP },
        { type: pkcs11js.CKA_UNWRAP },
      ]),
    );
    const flag = (index: number): boolean => attributes[index]?.value?.some((byte) => byte !== 0) ?? false;
    const key: CachedKey = {
      object: found[0],
      info: {
        aes256: readUlong(attributes[0]?.value) === CKK_AES && readUlong(attributes[1]?.value) === 32,
        canEncrypt: flag(2),
        canDecrypt: flag(3),
        canWrap: flag(4),
        canUnwrap: flag(5),
      },
      epoch: this.token.handleEpoch,
    };
    if (this.#keys.size >= 10_000) this.#keys.clear();
    this.#keys.set(label, key);
    return key;
  }
}

/** CK_GCM_PARAMS in its v2.40 form, which pkcs11js fills with ulIvBits (see pkcs11-key-store.ts). */
function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.AesGCM = { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, aad, ivBits: iv.length * 8, tagBits: TAG_BYTES * 8 };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

function readUlong(bytes: Buffer | undefined): number {
  if (bytes?.length === 8) return Number(bytes.readBigUInt64LE(0));
  if (bytes?.length === 4) return bytes.readUInt32LE(0);
  return -1;
}

/** PKCS#11 errors in the proxy's terms (hsm-backend.ts); messages carry only CKR_ names. */
function failure(error: unknown): HsmFailure {
  if (error instanceof HsmFailure) return error;
  if (error instanceof CryptoError) return new HsmFailure('AUTHENTICATION_FAILED', 'the tag did not verify');
  if (error instanceof Pkcs11Error) {
    if (error.code === 'KEY_NOT_FOUND') return new HsmFailure('KEY_NOT_FOUND', error.message);
    if (error.code === 'KEY_AMBIGUOUS') return new HsmFailure('KEY_AMBIGUOUS', error.message);
    if (error.code === 'POOL_TIMEOUT') return new HsmFailure('BUSY', error.message);
    if (UNAVAILABLE_CODES.has(error.code)) return new HsmFailure('UNAVAILABLE', error.message);
    return new HsmFailure('FAILED', error.message);
  }
  return new HsmFailure('FAILED', error instanceof Error ? error.name : 'error');
}

/** Opens the token, the audit log and the server; resolves once it is listening. */
export interface RunningXksProxyProcess {
  readonly url: string;
  reloadKeyStores(config: XksProxyConfig): void;
  stop(): Promise<void>;
}

export async function runXksProxy(config: XksProxyConfig, log: (line: object) => void): Promise<RunningXksProxyProcess> {
  const pin = Buffer.from(readPrivateFile(config.pkcs11.pinFile, 'the PIN file').replace(/\r?\n$/, ''), 'utf8');
  let token: Pkcs11Token;
  try {
    token = await Pkcs11Token.open({
      modulePath: config.pkcs11.modulePath,
      tokenLabel: config.pkcs11.tokenLabel,
      pin,
      sessions: config.pkcs11.sessions,
      acquireTimeoutMs: config.pkcs11.acquireTimeoutMs,
    });
  } finally {
    pin.fill(0);
  }
  const firstKey = config.keyStores[0]?.keys.values().next().value;
  const backend = new Pkcs11XksBackend(token, firstKey?.label);
  let audit: XksAuditLog;
  try {
    audit = await XksAuditLog.open(config.auditLog);
  } catch (error) {
    await backend.close();
    throw new XksConfigError(`the audit log ${config.auditLog} cannot be opened (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const onInternalError = (error: unknown, requestId: string): void =>
    log({ level: 'error', msg: 'request failed inside the proxy', requestId, error: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
  let server;
  try {
    server = await startXksProxyServer({ config, backend, audit, onInternalError });
  } catch (error) {
    await audit.close();
    await backend.close();
    throw error;
  }
  return {
    url: server.url,
    reloadKeyStores: (next) => server.reloadKeyStores(next.keyStores),
    stop: async () => {
      await server.close();
      await audit.close();
      await backend.close();
    },
  };
}

const integerIn = (min: number, max: number) => (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
  return parsed;
};

export function registerXksProxyCommand(program: Command): void {
  program
    .command('xks-proxy')
    .description('serve the AWS KMS external key store (XKS) proxy API in front of a PKCS#11 HSM')
    .option('--config <file>', 'JSON configuration (see docs/xks-proxy.md); flags override it')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .addOption(new Option('--port <port>', 'port to listen on (0, the default, picks a free one)').argParser(integerIn(0, 65535)))
    .option('--region <region>', 'the AWS region of the KMS that calls (SigV4 scope; default us-east-1)')
    .option('--uri-path-prefix <path>', 'the part of XksProxyUriPath before /kms/xks/v1 (default: none)')
    .option('--credentials-file <file>', 'SigV4 credentials, one ACCESS_KEY_ID:SECRET per line, two while rotating (0600)')
    .option('--key <xksKeyId=label>', 'map an XKS key id to a token key label (repeatable; append :disabled to disable)', (value, all: string[] = []) => [...all, value])
    .option('--module <path>', 'PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)')
    .option('--token-label <label>', 'the token holding the keys')
    .option('--pin-file <file>', "the token user's PIN (0600)")
    .addOption(new Option('--sessions <n>', 'PKCS#11 sessions in the pool (default 8)').argParser(integerIn(1, 256)))
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate chain')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--tls-client-ca <file>', 'require client certificates issued by this CA (mTLS)')
    .option('--tls-client-cn <name>', 'and with this subject CN (KMS: cks.kms.<region>.amazonaws.com)')
    .option('--audit-log <file>', 'append one JSON line per request here (created 0600)')
    .option('--ciphertext-metadata <base64>', 'ciphertextMetadata returned with, and bound into, every ciphertext (≤20 bytes)')
    .addOption(new Option('--fleet-size <n>', 'xksProxyFleetSize reported by the health check (default 1)').argParser(integerIn(1, 1000)))
    .action(async (options: XksProxyFlags) => {
      const log = (line: object): void => void process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
      let running: RunningXksProxyProcess;
      try {
        running = await runXksProxy(loadXksProxyConfig(options), log);
      } catch (error) {
        // Configuration, PKCS#11 and listen errors carry no secret (config.ts, errors.ts).
        program.error(`error: ${error instanceof Error ? error.message : 'the proxy could not start'}`);
      }
      process.stdout.write(`listening on ${running.url}\n`);
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      // SIGHUP re-reads the configuration and applies its key stores (credentials, keys, allowed
      // principals): rotation without a restart. Other settings need a restart. A configuration
      // that no longer loads leaves the running one in place.
      process.on('SIGHUP', () => {
        try {
          const next = loadXksProxyConfig(options);
          running.reloadKeyStores(next);
          log({ level: 'info', msg: 'reloaded the key stores', keyStores: next.keyStores.length });
        } catch (error) {
          log({ level: 'error', msg: 'reload refused; the running configuration stays', error: error instanceof Error ? error.message : 'unknown' });
        }
      });
    });
}
