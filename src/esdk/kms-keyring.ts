/**
 * The AWS KMS keyring (framework/aws-kms/aws-kms-keyring.md): a generator key makes the data key
 * with GenerateDataKey, every other configured key wraps it with Encrypt, and on decrypt only
 * encrypted data keys whose provider info names a configured key (by ARN) are sent to Decrypt.
 * It reaches KMS through @aws-sdk/client-kms, so any KMS endpoint works: Strongroom or AWS.
 */
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import type {
  DecryptCommandOutput,
  EncryptCommandOutput,
  GenerateDataKeyCommandOutput,
} from '@aws-sdk/client-kms';
import { EsdkError } from './errors.ts';
import type { DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Keyring } from './types.ts';

export const KMS_PROVIDER_ID = 'aws-kms';

/**
 * The narrow slice of a KMSClient the keyrings use. A real `KMSClient` fits; so does a wrapper
 * that counts or routes calls (the official SDK's `kms_types.ts` takes the same approach).
 */
export interface KmsClientLike {
  send(command: GenerateDataKeyCommand): Promise<GenerateDataKeyCommandOutput>;
  send(command: EncryptCommand): Promise<EncryptCommandOutput>;
  send(command: DecryptCommand): Promise<DecryptCommandOutput>;
  /** KMSClient's resolved config; the discovery keyring reads the region from it. */
  config?: { region?: string | (() => Promise<string>) };
}

/** Picks the client for a key: `region` is the ARN's region, or undefined for an id or alias name. */
export type KmsClientSupplier = (region: string | undefined) => KmsClientLike;

// ---------------------------------------------------------------------------------------------
// Key identifiers (aws-kms-key-arn.md, aws-kms-mrk-match-for-decrypt.md)

export interface KmsArn {
  partition: string;
  region: string;
  account: string;
  resourceType: 'key' | 'alias';
  /** The key id (`1234abcd-…` or `mrk-…`) or the alias name without `alias/`. */
  resourceId: string;
}

/** Exactly five colons; `arn`, partition, `kms`, region, account, then `key/<id>` or `alias/<name>`. */
export function parseKmsArn(identifier: string): KmsArn | undefined {
  const parts = identifier.split(':');
  if (parts.length !== 6) return undefined;
  const [arn, partition, service, region, account, resource] = parts;
  if (arn !== 'arn' || !partition || service !== 'kms' || !region || !account) return undefined;
  const slash = resource.indexOf('/');
  if (slash <= 0) return undefined;
  const resourceType = resource.slice(0, slash);
  const resourceId = resource.slice(slash + 1);
  if ((resourceType !== 'key' && resourceType !== 'alias') || !resourceId) return undefined;
  return { partition, region, account, resourceType, resourceId };
}

/** A key ARN (not an alias ARN): the only valid `KeyId` in a KMS response and the only valid provider info. */
export function parseKmsKeyArn(identifier: string): KmsArn | undefined {
  const arn = parseKmsArn(identifier);
  return arn?.resourceType === 'key' ? arn : undefined;
}

/** A key id, key ARN, alias name (`alias/…`) or alias ARN: what KMS accepts as `KeyId`. */
export function isKmsKeyIdentifier(identifier: unknown): identifier is string {
  if (typeof identifier !== 'string' || identifier.length === 0 || identifier.length > 2048) return false;
  if (identifier.startsWith('arn:')) return parseKmsArn(identifier) !== undefined;
  if (identifier.startsWith('alias/')) return identifier.length > 'alias/'.length;
  return !identifier.includes(':') && !identifier.includes('/');
}

/** "Identified as a multi-Region key": a key ARN or bare key id whose id starts with `mrk-`. */
export function isMultiRegionKey(identifier: string): boolean {
  if (identifier.startsWith('arn:')) {
    const arn = parseKmsArn(identifier);
    return arn?.resourceType === 'key' && arn.resourceId.startsWith('mrk-');
  }
  return identifier.startsWith('mrk-');
}

/** Identical identifiers match; otherwise both must be multi-Region key ARNs equal in all but the region. */
export function mrkMatchForDecrypt(configured: string, providerInfo: string): boolean {
  if (configured === providerInfo) return true;
  if (!isMultiRegionKey(configured) || !isMultiRegionKey(providerInfo)) return false;
  const a = parseKmsArn(configured);
  const b = parseKmsArn(providerInfo);
  if (!a || !b) return false;
  return a.partition === b.partition && a.account === b.account && a.resourceType === b.resourceType && a.resourceId === b.resourceId;
}

// ---------------------------------------------------------------------------------------------
// Shared with the discovery keyring

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

/** The key ARN an `aws-kms` EDK names, or undefined if it is another provider's or malformed. */
export function kmsEdkKeyArn(edk: EncryptedDataKey): { arn: string; parsed: KmsArn } | undefined {
  if (edk.providerId !== KMS_PROVIDER_ID) return undefined;
  let arn: string;
  try {
    arn = strictUtf8.decode(edk.providerInfo);
  } catch {
    return undefined;
  }
  const parsed = parseKmsKeyArn(arn);
  return parsed ? { arn, parsed } : undefined;
}

/**
 * One KMS failure as text a caller may see: the key, the operation and KMS's error name and
 * message. KMS messages carry no plaintext or context values; they are still cut short, and the
 * request (context, data key) never appears.
 */
export function describeKmsFailure(operation: string, keyId: string, error: unknown): string {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message.slice(0, 200) : '';
  return `${operation} with ${keyId} failed: ${name}${message ? `: ${message}` : ''}`;
}

export function contextForKms(context: EncryptionContext): Record<string, string> {
  return { ...context };
}

/**
 * Decrypt one EDK with `keyId` and check the answer (aws-kms-keyring.md "OnDecrypt"): the response
 * KeyId must equal the key asked for and the plaintext must be exactly the suite's key length.
 */
export async function decryptDataKey(
  client: KmsClientLike,
  keyId: string,
  edk: EncryptedDataKey,
  materials: DecryptionMaterials,
  grantTokens: readonly string[] | undefined,
): Promise<Uint8Array> {
  const response = await client.send(
    new DecryptCommand({
      KeyId: keyId,
      CiphertextBlob: edk.ciphertext,
      EncryptionContext: contextForKms(materials.encryptionContext),
      GrantTokens: grantTokens ? [...grantTokens] : undefined,
    }),
  );
  if (response.KeyId !== keyId) {
    throw new EsdkError('KeyringFailure', 'the KMS Decrypt response names a different key than the one asked');
  }
  if (!response.Plaintext || response.Plaintext.length !== materials.suite.keyLength) {
    response.Plaintext?.fill(0);
    throw new EsdkError('KeyringFailure', 'the KMS Decrypt response has a data key of the wrong length');
  }
  return response.Plaintext;
}

/** After every candidate EDK failed: one error listing each attempt (key, operation, KMS error name). */
export function noKeyDecrypted(keyringName: string, failures: readonly string[]): EsdkError {
  return new EsdkError(
    'KeyringFailure',
    `${keyringName} could not decrypt any data key (${failures.length} attempt(s) failed): ${failures.join('; ')}`,
  );
}

export function encodeUtf8(text: string): Uint8Array {
  return utf8.encode(text);
}

// ---------------------------------------------------------------------------------------------
// The keyring

export interface KmsKeyringOptions {
  /** The key that generates data keys (GenerateDataKey): key id, key ARN, alias name or alias ARN. */
  generatorKeyId?: string;
  /** More keys that each encrypt the data key (Encrypt); on decrypt, any of them may decrypt. */
  keyIds?: readonly string[];
  grantTokens?: readonly string[];
  /** One client for every key… */
  client?: KmsClientLike;
  /** …or one per region, for keys in several regions. */
  clientSupplier?: KmsClientSupplier;
}

export class KmsKeyring implements Keyring {
  readonly generatorKeyId: string | undefined;
  readonly keyIds: readonly string[];
  readonly grantTokens: readonly string[] | undefined;
  readonly #clientFor: KmsClientSupplier;

  constructor(options: KmsKeyringOptions) {
    const keyIds = options.keyIds ?? [];
    // Precondition: a keyring with no key would do nothing (aws-kms-keyring.md "Initialization").
    if (options.generatorKeyId === undefined && keyIds.length === 0) {
      throw new EsdkError('InvalidArgument', 'a KMS keyring needs a generator key or at least one key id');
    }
    for (const keyId of [options.generatorKeyId ?? keyIds[0], ...keyIds]) {
      if (!isKmsKeyIdentifier(keyId)) throw new EsdkError('InvalidArgument', 'a KMS key identifier is malformed');
    }
    if (options.grantTokens && !options.grantTokens.every((token) => typeof token === 'string' && token.length > 0)) {
      throw new EsdkError('InvalidArgument', 'grant tokens must be non-empty strings');
    }
    const { client, clientSupplier } = options;
    if (Boolean(client) === Boolean(clientSupplier)) {
      throw new EsdkError('InvalidArgument', 'a KMS keyring needs exactly one of client and clientSupplier');
    }
    this.generatorKeyId = options.generatorKeyId;
    this.keyIds = Object.freeze([...keyIds]);
    this.grantTokens = options.grantTokens ? Object.freeze([...options.grantTokens]) : undefined;
    this.#clientFor = clientSupplier ?? (() => client as KmsClientLike);
  }

  #client(keyId: string): KmsClientLike {
    return this.#clientFor(parseKmsArn(keyId)?.region);
  }

  async onEncrypt(materials: EncryptionMaterials): Promise<EncryptionMaterials> {
    const added: EncryptedDataKey[] = [];
    let plaintextDataKey = materials.plaintextDataKey;
    const wrappingKeys = [...this.keyIds];
    if (plaintextDataKey === undefined) {
      // Precondition: only a generator makes a data key; without one there is nothing to wrap.
      if (this.generatorKeyId === undefined) {
        throw new EsdkError('KeyringFailure', 'the KMS keyring has no generator key and the materials have no data key');
      }
      const generated = await this.#generate(this.generatorKeyId, materials);
      plaintextDataKey = generated.plaintext;
      added.push(generated.edk);
    } else if (this.generatorKeyId !== undefined) {
      wrappingKeys.unshift(this.generatorKeyId);
    }
    for (const keyId of wrappingKeys) added.push(await this.#wrap(keyId, plaintextDataKey, materials));
    return { ...materials, plaintextDataKey, encryptedDataKeys: [...materials.encryptedDataKeys, ...added] };
  }

  async #generate(keyId: string, materials: EncryptionMaterials): Promise<{ plaintext: Uint8Array; edk: EncryptedDataKey }> {
    let response: GenerateDataKeyCommandOutput;
    try {
      response = await this.#client(keyId).send(
        new GenerateDataKeyCommand({
          KeyId: keyId,
          NumberOfBytes: materials.suite.keyLength,
          EncryptionContext: contextForKms(materials.encryptionContext),
          GrantTokens: this.grantTokens ? [...this.grantTokens] : undefined,
        }),
      );
    } catch (error) {
      throw new EsdkError('KeyringFailure', `KMS ${describeKmsFailure('GenerateDataKey', keyId, error)}`);
    }
    // Postconditions (aws-kms-keyring.md "OnEncrypt"): a key ARN, a key of the suite's length, a blob.
    const { KeyId, Plaintext, CiphertextBlob } = response;
    if (!Plaintext || Plaintext.length !== materials.suite.keyLength) {
      Plaintext?.fill(0);
      throw new EsdkError('KeyringFailure', `KMS GenerateDataKey with ${keyId} returned a data key of the wrong length`);
    }
    if (!KeyId || !parseKmsKeyArn(KeyId) || !CiphertextBlob || CiphertextBlob.length === 0) {
      Plaintext.fill(0);
      throw new EsdkError('KeyringFailure', `KMS GenerateDataKey with ${keyId} returned no key ARN or no ciphertext`);
    }
    return { plaintext: Plaintext, edk: { providerId: KMS_PROVIDER_ID, providerInfo: encodeUtf8(KeyId), ciphertext: CiphertextBlob } };
  }

  async #wrap(keyId: string, plaintextDataKey: Uint8Array, materials: EncryptionMaterials): Promise<EncryptedDataKey> {
    let response: EncryptCommandOutput;
    try {
      response = await this.#client(keyId).send(
        new EncryptCommand({
          KeyId: keyId,
          Plaintext: plaintextDataKey,
          EncryptionContext: contextForKms(materials.encryptionContext),
          GrantTokens: this.grantTokens ? [...this.grantTokens] : undefined,
        }),
      );
    } catch (error) {
      throw new EsdkError('KeyringFailure', `KMS ${describeKmsFailure('Encrypt', keyId, error)}`);
    }
    if (!response.KeyId || !parseKmsKeyArn(response.KeyId) || !response.CiphertextBlob || response.CiphertextBlob.length === 0) {
      throw new EsdkError('KeyringFailure', `KMS Encrypt with ${keyId} returned no key ARN or no ciphertext`);
    }
    return { providerId: KMS_PROVIDER_ID, providerInfo: encodeUtf8(response.KeyId), ciphertext: response.CiphertextBlob };
  }

  /**
   * Tries, in message order, each `aws-kms` EDK whose provider info is a key ARN matching a
   * configured key (aws-kms-mrk-match-for-decrypt.md), asking KMS with the configured identifier.
   * The first success wins; failures are collected and, if nothing succeeds, reported together.
   * An alias or bare key id never matches: EDKs record key ARNs.
   */
  async onDecrypt(materials: DecryptionMaterials, encryptedDataKeys: readonly EncryptedDataKey[]): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials;
    const configured = this.generatorKeyId === undefined ? this.keyIds : [this.generatorKeyId, ...this.keyIds];
    const failures: string[] = [];
    for (const edk of encryptedDataKeys) {
      const named = kmsEdkKeyArn(edk);
      if (!named) continue;
      const keyId = configured.find((candidate) => mrkMatchForDecrypt(candidate, named.arn));
      if (keyId === undefined) continue;
      try {
        const plaintextDataKey = await decryptDataKey(this.#client(keyId), keyId, edk, materials, this.grantTokens);
        return { ...materials, plaintextDataKey };
      } catch (error) {
        failures.push(error instanceof EsdkError ? `Decrypt with ${keyId}: ${error.message}` : describeKmsFailure('Decrypt', keyId, error));
      }
    }
    if (failures.length > 0) throw noKeyDecrypted('the KMS keyring', failures);
    return materials;
  }
}
