/**
 * `strongroom xks-proxy` configuration: a JSON file (--config) and/or flags, checked in full before
 * the proxy starts. Every problem is one clear error naming the setting, never its secret value.
 * Limits and formats are the XKS Proxy API spec's (v1.0.3; PROTOCOL-NOTES §2.1–2.2).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SecretBytes } from '../../crypto/secret-bytes.ts';
import { MAX_CIPHERTEXT_METADATA_BYTES } from '../../crypto/xks-integrity.ts';
import { decodeStrictBase64 } from './wire.ts';

export class XksConfigError extends Error {
  override readonly name = 'XksConfigError';
}

export interface XksCredential {
  /** 20–30 characters from A–Z2–7 (spec "Authentication"). */
  readonly accessKeyId: string;
  /** 43–64 characters from A–Za–z0–9/+=; held as SecretBytes, never printed. */
  readonly secretAccessKey: SecretBytes;
}

export interface XksKeyMapping {
  /** The externalKeyId KMS sends in the URI: ≤128 characters from [A-Za-z0-9._-]. */
  readonly xksKeyId: string;
  /** CKA_LABEL of the AES-256 secret key object in the token. */
  readonly label: string;
  /** keyStatus in GetKeyMetadata; a disabled key refuses Encrypt and Decrypt (InvalidStateException). */
  readonly enabled: boolean;
}

/** One external key store of KMS: one URI path prefix with its credentials and keys. */
export interface XksKeyStoreConfig {
  /** "" or "/a/b": the XksProxyUriPath KMS is given, less its "/kms/xks/v1" ending. */
  readonly uriPathPrefix: string;
  /** One or two: two let the operator rotate the credential without downtime. */
  readonly credentials: readonly XksCredential[];
  readonly keys: ReadonlyMap<string, XksKeyMapping>;
  /**
   * Secondary authorisation: awsPrincipalArn must equal one of these or start with one ending in
   * `*`. Undefined: any principal KMS vouches for. Never applied to the health check (spec).
   */
  readonly allowedPrincipalArns: readonly string[] | undefined;
}

export interface XksTlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** Client certificates must chain to this CA (mTLS). */
  readonly clientCaFile: string | undefined;
  /** And, when set, have this subject CN (KMS presents cks.kms.<region>.amazonaws.com). */
  readonly clientCommonName: string | undefined;
}

export interface XksPkcs11Config {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly pinFile: string;
  readonly sessions: number;
  readonly acquireTimeoutMs: number;
}

export interface XksProxyConfig {
  readonly host: string;
  readonly port: number;
  /** The KMS region: the SigV4 credential scope must name it. */
  readonly region: string;
  readonly tls: XksTlsConfig | undefined;
  readonly pkcs11: XksPkcs11Config;
  readonly keyStores: readonly XksKeyStoreConfig[];
  readonly auditLog: string;
  /** Returned as ciphertextMetadata with each ciphertext and bound into its AAD; empty: none. */
  readonly ciphertextMetadata: Buffer;
  readonly fleetSize: number;
  readonly healthCacheMs: number;
}

/** The flags of `strongroom xks-proxy`, all optional: they override or stand in for the file. */
export interface XksProxyFlags {
  readonly config?: string;
  readonly host?: string;
  readonly port?: number;
  readonly region?: string;
  readonly uriPathPrefix?: string;
  readonly credentialsFile?: string;
  readonly key?: readonly string[];
  readonly module?: string;
  readonly tokenLabel?: string;
  readonly pinFile?: string;
  readonly sessions?: number;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsClientCa?: string;
  readonly tlsClientCn?: string;
  readonly auditLog?: string;
  readonly ciphertextMetadata?: string;
  readonly fleetSize?: number;
}

export const XKS_PATH_SUFFIX = '/kms/xks/v1';
const ACCESS_KEY_ID = /^[A-Z2-7]{20,30}$/;
const SECRET_ACCESS_KEY = /^[A-Za-z0-9/+=]{43,64}$/;
export const XKS_KEY_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** XksProxyUriPath is ≤128 characters of [A-Za-z0-9/_-] and ends in /kms/xks/v1. */
const URI_PATH_PREFIX = /^(\/[A-Za-z0-9_-]+)*$/;
const MAX_PREFIX_CHARS = 128 - XKS_PATH_SUFFIX.length;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

export function loadXksProxyConfig(flags: XksProxyFlags): XksProxyConfig {
  let file: Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (flags.config !== undefined) {
    const text = readPrivateFile(flags.config, 'the configuration file');
    try {
      file = objectOf(JSON.parse(text), 'the configuration file');
    } catch (error) {
      if (error instanceof XksConfigError) throw error;
      throw new XksConfigError(`the configuration file ${flags.config} is not valid JSON`);
    }
    baseDir = dirname(resolve(flags.config));
  }
  const path = (value: unknown, name: string): string => resolve(baseDir, stringOf(value, name));
  const pkcs11 = file.pkcs11 === undefined ? {} : objectOf(file.pkcs11, 'pkcs11');
  const tlsFile = file.tls === undefined ? {} : objectOf(file.tls, 'tls');

  const region = flags.region ?? optionalString(file.region, 'region') ?? 'us-east-1';
  if (!REGION.test(region)) throw new XksConfigError('region must look like an AWS region name (e.g. us-east-1)');

  const keyStores = keyStoresOf(flags, file, baseDir);
  const tlsCert = flags.tlsCert ?? (tlsFile.cert !== undefined ? path(tlsFile.cert, 'tls.cert') : undefined);
  const tlsKey = flags.tlsKey ?? (tlsFile.key !== undefined ? path(tlsFile.key, 'tls.key') : undefined);
  const clientCaFile = flags.tlsClientCa ?? (tlsFile.clientCa !== undefined ? path(tlsFile.clientCa, 'tls.clientCa') : undefined);
  const clientCommonName = flags.tlsClientCn ?? optionalString(tlsFile.clientCommonName, 'tls.clientCommonName');
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new XksConfigError('--tls-cert and --tls-key go together');
  if ((clientCaFile || clientCommonName) && !tlsCert) throw new XksConfigError('mutual TLS (--tls-client-ca) needs --tls-cert and --tls-key');
  if (clientCommonName && !clientCaFile) throw new XksConfigError('--tls-client-cn needs --tls-client-ca');

  const modulePath = flags.module ?? (pkcs11.module !== undefined ? path(pkcs11.module, 'pkcs11.module') : undefined);
  const tokenLabel = flags.tokenLabel ?? optionalString(pkcs11.tokenLabel, 'pkcs11.tokenLabel');
  const pinFile = flags.pinFile ?? (pkcs11.pinFile !== undefined ? path(pkcs11.pinFile, 'pkcs11.pinFile') : undefined);
  if (!modulePath || !tokenLabel || !pinFile) throw new XksConfigError('the HSM needs --module, --token-label and --pin-file');
  const auditLog = flags.auditLog ?? (file.auditLog !== undefined ? path(file.auditLog, 'auditLog') : undefined);
  if (!auditLog) throw new XksConfigError('--audit-log is required: every request is recorded there');

  const metadataText = flags.ciphertextMetadata ?? optionalString(file.ciphertextMetadata, 'ciphertextMetadata');
  const ciphertextMetadata = metadataText === undefined ? Buffer.alloc(0) : decodeStrictBase64(metadataText);
  if (!ciphertextMetadata || ciphertextMetadata.length > MAX_CIPHERTEXT_METADATA_BYTES) {
    throw new XksConfigError(`ciphertextMetadata must be base64 of at most ${MAX_CIPHERTEXT_METADATA_BYTES} bytes`);
  }

  return {
    host: flags.host ?? optionalString(file.host, 'host') ?? '127.0.0.1',
    port: flags.port ?? integerOf(file.port ?? 0, 'port', 0, 65_535),
    region,
    tls: tlsCert && tlsKey ? { certFile: tlsCert, keyFile: tlsKey, clientCaFile, clientCommonName } : undefined,
    pkcs11: {
      modulePath,
      tokenLabel,
      pinFile,
      sessions: flags.sessions ?? integerOf(pkcs11.sessions ?? 8, 'pkcs11.sessions', 1, 256),
      acquireTimeoutMs: integerOf(pkcs11.acquireTimeoutMs ?? 200, 'pkcs11.acquireTimeoutMs', 1, 60_000),
    },
    keyStores,
    auditLog,
    ciphertextMetadata,
    fleetSize: flags.fleetSize ?? integerOf(file.fleetSize ?? 1, 'fleetSize', 1, 1000),
    healthCacheMs: integerOf(file.healthCacheSeconds ?? 10, 'healthCacheSeconds', 0, 60) * 1000,
  };
}

function keyStoresOf(flags: XksProxyFlags, file: Record<string, unknown>, baseDir: string): XksKeyStoreConfig[] {
  const fromFlags = flags.uriPathPrefix !== undefined || flags.credentialsFile !== undefined || (flags.key?.length ?? 0) > 0;
  if (fromFlags && file.keyStores !== undefined) {
    throw new XksConfigError('give key stores either in the configuration file (keyStores) or with --uri-path-prefix/--credentials-file/--key, not both');
  }
  let stores: XksKeyStoreConfig[];
  if (fromFlags) {
    if (flags.credentialsFile === undefined) throw new XksConfigError('--credentials-file is required (lines of ACCESS_KEY_ID:SECRET)');
    stores = [
      {
        uriPathPrefix: prefixOf(flags.uriPathPrefix ?? '', '--uri-path-prefix'),
        credentials: credentialsOf(parseCredentialLines(readPrivateFile(flags.credentialsFile, 'the credentials file')), '--credentials-file'),
        keys: keysOf((flags.key ?? []).map(parseKeyFlag), '--key'),
        allowedPrincipalArns: undefined,
      },
    ];
  } else {
    if (!Array.isArray(file.keyStores) || file.keyStores.length === 0) {
      throw new XksConfigError('no key store configured: give keyStores in --config, or --credentials-file and --key');
    }
    stores = file.keyStores.map((raw, index) => keyStoreOf(raw, `keyStores[${index}]`, baseDir));
  }
  const prefixes = new Set<string>();
  for (const store of stores) {
    if (prefixes.has(store.uriPathPrefix)) throw new XksConfigError(`two key stores have the URI path prefix "${store.uriPathPrefix}"`);
    prefixes.add(store.uriPathPrefix);
  }
  return stores;
}

function keyStoreOf(raw: unknown, name: string, baseDir: string): XksKeyStoreConfig {
  const store = objectOf(raw, name);
  let credentialsRaw: unknown[];
  if (store.credentialsFile !== undefined) {
    if (store.credentials !== undefined) throw new XksConfigError(`${name}: give credentials or credentialsFile, not both`);
    credentialsRaw = parseCredentialLines(readPrivateFile(resolve(baseDir, stringOf(store.credentialsFile, `${name}.credentialsFile`)), `${name}.credentialsFile`));
  } else {
    if (!Array.isArray(store.credentials)) throw new XksConfigError(`${name}.credentials must be a list of {accessKeyId, secretAccessKey}`);
    credentialsRaw = store.credentials;
  }
  let keysRaw: unknown[];
  if (Array.isArray(store.keys)) keysRaw = store.keys;
  else if (typeof store.keys === 'object' && store.keys !== null) {
    keysRaw = Object.entries(store.keys).map(([xksKeyId, label]) => ({ xksKeyId, label }));
  } else throw new XksConfigError(`${name}.keys must map XKS key ids to token key labels`);
  let allowedPrincipalArns: string[] | undefined;
  if (store.allowedPrincipalArns !== undefined) {
    if (!Array.isArray(store.allowedPrincipalArns) || store.allowedPrincipalArns.some((arn) => typeof arn !== 'string' || arn === '')) {
      throw new XksConfigError(`${name}.allowedPrincipalArns must be a list of ARNs`);
    }
    allowedPrincipalArns = store.allowedPrincipalArns as string[];
  }
  return {
    uriPathPrefix: prefixOf(store.uriPathPrefix ?? '', `${name}.uriPathPrefix`),
    credentials: credentialsOf(credentialsRaw, `${name}.credentials`),
    keys: keysOf(keysRaw, `${name}.keys`),
    allowedPrincipalArns,
  };
}

function prefixOf(value: unknown, name: string): string {
  const prefix = stringOf(value, name, true).replace(/\/+$/, '');
  if (!URI_PATH_PREFIX.test(prefix) || prefix.length > MAX_PREFIX_CHARS) {
    throw new XksConfigError(`${name} must be empty or /-separated segments of [A-Za-z0-9_-], at most ${MAX_PREFIX_CHARS} characters`);
  }
  if (`${prefix}/`.includes(`${XKS_PATH_SUFFIX}/`)) throw new XksConfigError(`${name} is the part before ${XKS_PATH_SUFFIX}; leave that ending off`);
  return prefix;
}

function credentialsOf(raw: readonly unknown[], name: string): XksCredential[] {
  if (raw.length < 1 || raw.length > 2) throw new XksConfigError(`${name}: give one or two credentials (two while rotating)`);
  const credentials = raw.map((entry, index) => {
    const credential = objectOf(entry, `${name}[${index}]`);
    const accessKeyId = stringOf(credential.accessKeyId, `${name}[${index}].accessKeyId`);
    const secret = stringOf(credential.secretAccessKey, `${name}[${index}].secretAccessKey`);
    if (!ACCESS_KEY_ID.test(accessKeyId)) throw new XksConfigError(`${name}[${index}].accessKeyId must be 20-30 characters from A-Z and 2-7`);
    if (!SECRET_ACCESS_KEY.test(secret)) {
      throw new XksConfigError(`${name}[${index}].secretAccessKey must be 43-64 characters from A-Z, a-z, 0-9, /, + and =`);
    }
    return { accessKeyId, secretAccessKey: SecretBytes.from(Buffer.from(secret, 'utf8')) };
  });
  if (credentials.length === 2 && credentials[0].accessKeyId === credentials[1].accessKeyId) {
    throw new XksConfigError(`${name}: the two credentials have the same access key id`);
  }
  return credentials;
}

function keysOf(raw: readonly unknown[], name: string): Map<string, XksKeyMapping> {
  const keys = new Map<string, XksKeyMapping>();
  raw.forEach((entry, index) => {
    const key = objectOf(entry, `${name}[${index}]`);
    const xksKeyId = stringOf(key.xksKeyId, `${name}[${index}].xksKeyId`);
    if (!XKS_KEY_ID.test(xksKeyId)) throw new XksConfigError(`${name}: XKS key id "${xksKeyId}" must be 1-128 characters from [A-Za-z0-9._-]`);
    if (keys.has(xksKeyId)) throw new XksConfigError(`${name}: XKS key id "${xksKeyId}" is mapped twice`);
    const label = stringOf(key.label, `${name}[${index}].label`);
    if (key.enabled !== undefined && typeof key.enabled !== 'boolean') throw new XksConfigError(`${name}[${index}].enabled must be true or false`);
    keys.set(xksKeyId, { xksKeyId, label, enabled: key.enabled !== false });
  });
  if (keys.size === 0) throw new XksConfigError(`${name}: map at least one XKS key id to a token key label`);
  return keys;
}

/** --key ID=LABEL, or ID=LABEL:disabled. */
function parseKeyFlag(value: string): { xksKeyId: string; label: string; enabled: boolean } {
  const equals = value.indexOf('=');
  if (equals <= 0 || equals === value.length - 1) throw new XksConfigError(`--key must be XKS_KEY_ID=TOKEN_KEY_LABEL, got "${value}"`);
  const xksKeyId = value.slice(0, equals);
  let label = value.slice(equals + 1);
  const disabled = label.endsWith(':disabled');
  if (disabled) label = label.slice(0, -':disabled'.length);
  return { xksKeyId, label, enabled: !disabled };
}

/** A credentials file: one `ACCESS_KEY_ID:SECRET` per line (two while rotating); # comments. */
export function parseCredentialLines(text: string): Array<{ accessKeyId: string; secretAccessKey: string }> {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line, index) => {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new XksConfigError(`credentials line ${index + 1} must be ACCESS_KEY_ID:SECRET`);
      return { accessKeyId: line.slice(0, colon), secretAccessKey: line.slice(colon + 1) };
    });
}

/**
 * Reads a file that holds secrets; refuses one that group or others may read, as a leaked
 * credential or PIN file is a leaked HSM.
 */
export function readPrivateFile(path: string, what: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    throw new XksConfigError(`${what} ${path} cannot be read`);
  }
  if ((mode & 0o077) !== 0) throw new XksConfigError(`${what} ${path} holds secrets: make it readable by its owner only (chmod 600)`);
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new XksConfigError(`${what} ${path} cannot be read`);
  }
}

function objectOf(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new XksConfigError(`${name} must be a JSON object`);
  return value as Record<string, unknown>;
}

function stringOf(value: unknown, name: string, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value === '')) throw new XksConfigError(`${name} must be a non-empty string`);
  return value;
}

function optionalString(value: unknown, name: string): string | undefined {
  return value === undefined ? undefined : stringOf(value, name);
}

function integerOf(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new XksConfigError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}
