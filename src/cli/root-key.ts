import { existsSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Sealer } from '../crypto/seal.ts';
import { SecretBytes } from '../crypto/secret-bytes.ts';
import { Pkcs11RootKey } from '../keystores/pkcs11/root-key.ts';
import { loadOrCreateRootKeyFile } from '../keystores/root-key-file.ts';

/**
 * Where the data directory's root key lives: `root.key` (the embedded default, a key file made at
 * first start), or a PKCS#11 token named in `root-key.json` by `strongroom init --root-key
 * pkcs11:...` (the key never leaves the token; sealing and unsealing happen inside it).
 */
export const rootKeyPaths = (dataDir: string) => ({
  file: join(dataDir, 'root.key'),
  hsmConfig: join(dataDir, 'root-key.json'),
});

export interface Pkcs11RootKeyConfig {
  type: 'pkcs11';
  modulePath: string;
  tokenLabel: string;
  objectLabel: string;
  /** A file holding the token user's PIN (0600), read at every start. */
  pinFile: string;
}

/**
 * An RFC 7512 PKCS#11 URI naming the root key: `pkcs11:token=<label>;object=<label>` with the
 * query attributes `module-path=<library>` and `pin-source=file:<path>` (or `--pin-file`).
 */
export function parseRootKeyUri(uri: string, pinFile?: string): Pkcs11RootKeyConfig {
  const match = /^pkcs11:([^?]*)(?:\?(.*))?$/.exec(uri);
  if (!match) throw new Error('--root-key must be a PKCS#11 URI: pkcs11:token=...;object=...?module-path=...');
  const attributes = (text: string | undefined, separator: string): Map<string, string> => {
    const map = new Map<string, string>();
    for (const part of (text ?? '').split(separator).filter(Boolean)) {
      const equals = part.indexOf('=');
      if (equals < 1) throw new Error(`--root-key: "${part}" is not name=value`);
      let value: string;
      try {
        value = decodeURIComponent(part.slice(equals + 1));
      } catch {
        throw new Error(`--root-key: "${part}" has a bad percent-encoding`);
      }
      map.set(part.slice(0, equals), value);
    }
    return map;
  };
  const path = attributes(match[1], ';');
  const query = attributes(match[2], '&');
  const tokenLabel = path.get('token');
  const objectLabel = path.get('object');
  const modulePath = query.get('module-path');
  const pinSource = query.get('pin-source');
  if (!tokenLabel || !objectLabel) throw new Error('--root-key needs token=<label> and object=<label>');
  if (!modulePath) throw new Error('--root-key needs ?module-path=<PKCS#11 library>');
  if (pinSource !== undefined && !pinSource.startsWith('file:')) throw new Error('--root-key: pin-source must be file:<path>');
  const pin = pinFile ?? pinSource?.slice('file:'.length);
  if (!pin) throw new Error('--root-key needs the PIN: pin-source=file:<path> or --pin-file <path>');
  return { type: 'pkcs11', modulePath, tokenLabel, objectLabel, pinFile: resolve(pin) };
}

async function readPin(pinFile: string): Promise<SecretBytes> {
  const info = await stat(pinFile).catch(() => undefined);
  if (!info) throw new Error(`the root key's PIN file ${pinFile} does not exist`);
  if ((info.mode & 0o077) !== 0) throw new Error(`the root key's PIN file ${pinFile} is readable by other users; run: chmod 600 ${pinFile}`);
  const text = await readFile(pinFile);
  let end = text.length;
  while (end > 0 && (text[end - 1] === 0x0a || text[end - 1] === 0x0d)) end--;
  const pin = SecretBytes.from(text.subarray(0, end));
  text.fill(0);
  return pin;
}

async function readConfig(path: string): Promise<Pkcs11RootKeyConfig> {
  const config = JSON.parse(await readFile(path, 'utf8')) as Partial<Pkcs11RootKeyConfig>;
  if (config.type !== 'pkcs11' || !config.modulePath || !config.tokenLabel || !config.objectLabel || !config.pinFile) {
    throw new Error(`${path} is not a Strongroom root key configuration`);
  }
  return config as Pkcs11RootKeyConfig;
}

export interface RootSealer {
  sealer: Sealer;
  source: 'file' | 'pkcs11';
  close(): Promise<void>;
}

/** Opens the data directory's root key; with `create`, makes the key file on first start. */
export async function openRootSealer(dataDir: string, options: { create: boolean }): Promise<RootSealer> {
  const paths = rootKeyPaths(dataDir);
  if (existsSync(paths.hsmConfig)) {
    const config = await readConfig(paths.hsmConfig);
    const pin = await readPin(config.pinFile);
    try {
      const backend = await Pkcs11RootKey.open({ modulePath: config.modulePath, tokenLabel: config.tokenLabel, objectLabel: config.objectLabel, pin });
      return { sealer: new Sealer(backend), source: 'pkcs11', close: () => backend.close() };
    } finally {
      pin.zero();
    }
  }
  if (!options.create && !existsSync(paths.file)) throw new Error(`${dataDir} has no root key (root.key or root-key.json)`);
  const { rootKey } = await loadOrCreateRootKeyFile(paths.file);
  return { sealer: new Sealer(rootKey), source: 'file', close: async () => rootKey.zero() };
}

/**
 * `strongroom init --root-key pkcs11:...`: points a new data directory at a root key in a token,
 * generating the key there (non-extractable AES-256) unless one with that label exists, and proves
 * it seals and unseals before writing `root-key.json` (0600). An existing installation keeps the
 * root key it has: moving to another would mean resealing everything, which this does not do.
 */
export async function initRootKey(dataDir: string, config: Pkcs11RootKeyConfig): Promise<{ generated: boolean }> {
  const paths = rootKeyPaths(dataDir);
  for (const existing of [paths.file, paths.hsmConfig, join(dataDir, 'strongroom.db')]) {
    if (existsSync(existing)) throw new Error(`${dataDir} is already initialised (${existing} exists)`);
  }
  const pin = await readPin(config.pinFile);
  let backend: Pkcs11RootKey | undefined;
  let generated = false;
  try {
    try {
      backend = await Pkcs11RootKey.open({ ...config, pin });
    } catch (error) {
      if ((error as { code?: string }).code !== 'KEY_NOT_FOUND') throw error;
      backend = await Pkcs11RootKey.open({ ...config, pin, create: true });
      generated = true;
    }
    const sealer = new Sealer(backend);
    const probe = SecretBytes.random(32);
    const opened = sealer.unseal(sealer.seal(probe, 'root-key-check'), 'root-key-check');
    if (!opened.exposeSecretBytes().equals(probe.exposeSecretBytes())) throw new Error('the root key did not unseal what it sealed');
    opened.zero();
    probe.zero();
  } finally {
    pin.zero();
    await backend?.close();
  }
  const temporary = `${paths.hsmConfig}.${process.pid}.tmp`;
  await rm(temporary, { force: true });
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(config, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, paths.hsmConfig);
  return { generated };
}
