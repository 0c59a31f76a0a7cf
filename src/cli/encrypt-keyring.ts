/**
 * The KMS side of `strongroom encrypt` / `decrypt`: one KMSClient for the run (endpoint, region and
 * credentials from the options and the SDK's default chain: environment, shared credentials and
 * config files, SSO, process credentials, instance roles) and the keyring or materials manager.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { loadSharedConfigFiles } from '@smithy/core/config';
import { CachingCryptographicMaterialsManager } from '../esdk/caching-cmm.ts';
import { KmsDiscoveryKeyring } from '../esdk/kms-discovery-keyring.ts';
import { KmsKeyring, isKmsKeyIdentifier, parseKmsKeyArn } from '../esdk/kms-keyring.ts';
import type { CryptographicMaterialsManager, Keyring } from '../esdk/types.ts';
import { UsageError, type RunConfig } from './encrypt-options.ts';

export function kmsClientFor(config: Pick<RunConfig, 'endpoint' | 'region' | 'profile' | 'kmsTimeoutSeconds'>): KMSClient {
  // The SDK's notice that its future releases will need Node 22 addresses whoever picks SDK
  // versions (package.json pins one), not someone encrypting a file; keep it off the CLI's stderr,
  // where scripts read our messages. Setting the variable yourself still wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new KMSClient({
    // Likewise the credential chain's multi-line "Multiple credential sources detected" notice
    // (--profile or AWS_PROFILE with AWS_ACCESS_KEY_ID set): the profile wins, as in the AWS CLI,
    // and docs/esdk-cli.md says so. The chain prints it with console.warn unless the client has a
    // logger other than the SDK's NoOpLogger; this one is silent, as the default logger is.
    logger: silentLogger,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.region ? { region: config.region } : {}),
    ...(config.profile ? { profile: config.profile } : {}),
    // The SDK waits forever on a KMS that accepted the connection and went silent. Give up as
    // botocore (the aws-encryption-cli's client) does: connecting, and waiting for the next byte
    // of an answer, each at most this long per attempt (the SDK retries, 3 attempts in all).
    requestHandler: { connectionTimeout: config.kmsTimeoutSeconds * 1000, socketTimeout: config.kmsTimeoutSeconds * 1000 },
  });
}

const silentLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/**
 * A profile named by --profile or AWS_PROFILE must be in the shared config or credentials file
 * (read by the SDK's own loader): otherwise the SDK's credential chain only says it "could not
 * load credentials from any providers", at the first KMS call. Not checked for the implicit
 * "default", which the chain may never need (environment variables, instance roles).
 */
export async function checkProfile(config: Pick<RunConfig, 'profile'>): Promise<void> {
  const named = config.profile ?? process.env.AWS_PROFILE;
  if (!named) return;
  const { configFile, credentialsFile } = await loadSharedConfigFiles({ ignoreCache: true });
  if (Object.hasOwn(configFile, named) || Object.hasOwn(credentialsFile, named)) return;
  const configPath = process.env.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config');
  const credentialsPath = process.env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), '.aws', 'credentials');
  throw new UsageError(`the profile ${JSON.stringify(named)} (${config.profile ? '--profile' : 'AWS_PROFILE'}) is in neither ${configPath} nor ${credentialsPath}`);
}

export function checkKeyIdentifiers(keys: readonly string[]): void {
  for (const key of keys) {
    if (!isKmsKeyIdentifier(key)) throw new UsageError(`--key ${JSON.stringify(key)} is not a key id, key ARN, alias name or alias ARN`);
  }
}

/**
 * EDKs record key ARNs, and a decrypting keyring matches them by ARN (aws-kms-keyring.md). So that
 * `--key alias/app` or a bare key id work at decrypt as they do at encrypt, such names are resolved
 * to their key ARN with DescribeKey first.
 */
export async function resolveKeyArns(client: KMSClient, keys: readonly string[]): Promise<string[]> {
  const arns: string[] = [];
  for (const key of keys) {
    if (parseKmsKeyArn(key)) {
      arns.push(key);
      continue;
    }
    let arn: string | undefined;
    try {
      arn = (await client.send(new DescribeKeyCommand({ KeyId: key }))).KeyMetadata?.Arn;
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error';
      const message = error instanceof Error ? `: ${error.message.slice(0, 200)}` : '';
      throw new Error(`cannot resolve --key ${key} to a key ARN (DescribeKey failed: ${name}${message})`);
    }
    if (!arn) throw new Error(`cannot resolve --key ${key} to a key ARN`);
    arns.push(arn);
  }
  return arns;
}

/** The keyring (or, with --cache-max-age, a caching manager over it) for this run. */
export async function materialsFor(
  config: RunConfig,
  client: KMSClient,
): Promise<{ keyring: Keyring } | { cmm: CryptographicMaterialsManager }> {
  const grantTokens = config.grantTokens.length > 0 ? config.grantTokens : undefined;
  let keyring: Keyring;
  if (config.mode === 'decrypt' && config.discovery) {
    const discoveryFilter =
      config.discoveryAccounts.length > 0 ? { partition: config.discoveryPartition ?? 'aws', accountIds: config.discoveryAccounts } : undefined;
    keyring = new KmsDiscoveryKeyring({ client, discoveryFilter, grantTokens });
  } else {
    const keys = config.mode === 'decrypt' ? await resolveKeyArns(client, config.keys) : config.keys;
    keyring = config.mode === 'encrypt'
      ? new KmsKeyring({ generatorKeyId: keys[0], keyIds: keys.slice(1), client, grantTokens })
      : new KmsKeyring({ keyIds: keys, client, grantTokens });
  }
  if (config.cacheMaxAgeSeconds === undefined) return { keyring };
  return {
    cmm: new CachingCryptographicMaterialsManager({
      underlying: keyring,
      maxAge: config.cacheMaxAgeSeconds * 1000,
      maxMessagesEncrypted: config.cacheMaxMessages,
    }),
  };
}
