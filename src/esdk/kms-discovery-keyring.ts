/**
 * The AWS KMS discovery keyring (framework/aws-kms/aws-kms-discovery-keyring.md): it holds no key
 * of its own and decrypts with whichever key ARN an `aws-kms` EDK names, optionally only keys of
 * one partition and a list of accounts. It never encrypts.
 */
import { EsdkError } from './errors.ts';
import {
  decryptDataKey,
  describeKmsFailure,
  isMultiRegionKey,
  kmsEdkKeyArn,
  noKeyDecrypted,
  type KmsClientLike,
  type KmsClientSupplier,
} from './kms-keyring.ts';
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from './types.ts';

export interface DiscoveryFilter {
  /** e.g. `aws`; Strongroom's ARNs use `aws` too. */
  partition: string;
  accountIds: readonly string[];
}

export interface KmsDiscoveryKeyringOptions {
  /** One client: only keys in its region are tried (multi-Region keys are asked for in its region)… */
  client?: KmsClientLike;
  /** The region of `client`, if its config does not tell. */
  region?: string;
  /** …or a client per region: each EDK's key is asked in its own region. */
  clientSupplier?: KmsClientSupplier;
  discoveryFilter?: DiscoveryFilter;
  grantTokens?: readonly string[];
}

export class KmsDiscoveryKeyring implements Keyring {
  readonly discoveryFilter: Readonly<DiscoveryFilter> | undefined;
  readonly grantTokens: readonly string[] | undefined;
  readonly #client: KmsClientLike | undefined;
  readonly #clientSupplier: KmsClientSupplier | undefined;
  #region: string | undefined;

  constructor(options: KmsDiscoveryKeyringOptions) {
    if (Boolean(options.client) === Boolean(options.clientSupplier)) {
      throw new EsdkError('InvalidArgument', 'a KMS discovery keyring needs exactly one of client and clientSupplier');
    }
    const filter = options.discoveryFilter;
    // Precondition: a filter must be able to match something (an empty account list never does).
    if (
      filter &&
      (typeof filter.partition !== 'string' ||
        filter.partition.length === 0 ||
        !Array.isArray(filter.accountIds) ||
        filter.accountIds.length === 0 ||
        !filter.accountIds.every((account) => typeof account === 'string' && account.length > 0))
    ) {
      throw new EsdkError('InvalidArgument', 'a discovery filter needs a partition and at least one account id');
    }
    this.discoveryFilter = filter ? Object.freeze({ partition: filter.partition, accountIds: Object.freeze([...filter.accountIds]) }) : undefined;
    this.grantTokens = options.grantTokens ? Object.freeze([...options.grantTokens]) : undefined;
    this.#client = options.client;
    this.#clientSupplier = options.clientSupplier;
    this.#region = options.region;
  }

  /** aws-kms-discovery-keyring.md "OnEncrypt": MUST fail. */
  async onEncrypt(_materials: EncryptionMaterials): Promise<EncryptionMaterials> {
    throw new EsdkError('KeyringFailure', 'a KMS discovery keyring cannot encrypt');
  }

  async #clientRegion(client: KmsClientLike): Promise<string> {
    if (this.#region === undefined) {
      const configured = client.config?.region;
      this.#region = typeof configured === 'function' ? await configured() : configured;
    }
    if (!this.#region) throw new EsdkError('InvalidArgument', 'the KMS discovery keyring cannot tell its client’s region');
    return this.#region;
  }

  async onDecrypt(materials: DecryptionMaterials, encryptedDataKeys: readonly EncryptedDataKey[]): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials;
    const failures: string[] = [];
    for (const edk of encryptedDataKeys) {
      // Filter (aws-kms-discovery-keyring.md "OnDecrypt"): an aws-kms EDK naming a key ARN…
      const named = kmsEdkKeyArn(edk);
      if (!named) continue;
      const { arn, parsed } = named;
      // …of the filter's partition and accounts…
      if (this.discoveryFilter) {
        if (parsed.partition !== this.discoveryFilter.partition) continue;
        if (!this.discoveryFilter.accountIds.includes(parsed.account)) continue;
      }
      // …and, with a single client, in its region; a multi-Region key is asked for as the replica there.
      let client: KmsClientLike;
      let keyId = arn;
      if (this.#client) {
        client = this.#client;
        const region = await this.#clientRegion(client);
        if (parsed.region !== region) {
          if (!isMultiRegionKey(arn)) continue;
          keyId = arn.split(':').map((part, index) => (index === 3 ? region : part)).join(':');
        }
      } else {
        client = (this.#clientSupplier as KmsClientSupplier)(parsed.region);
      }
      try {
        const plaintextDataKey = await decryptDataKey(client, keyId, edk, materials, this.grantTokens);
        return { ...materials, plaintextDataKey };
      } catch (error) {
        failures.push(error instanceof EsdkError ? `Decrypt with ${keyId}: ${error.message}` : describeKmsFailure('Decrypt', keyId, error));
      }
    }
    if (failures.length > 0) throw noKeyDecrypted('the KMS discovery keyring', failures);
    return materials;
  }
}
