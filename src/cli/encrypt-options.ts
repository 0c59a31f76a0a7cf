/**
 * What `strongroom encrypt` / `strongroom decrypt` accept on the command line, parsed and checked
 * before any file is touched: a bad value is a usage error (exit 2) naming the option.
 */
import { InvalidArgumentError } from 'commander';
import { EsdkError } from '../esdk/errors.ts';
import { assertEncryptAllowed, getAlgorithmSuite } from '../esdk/suites.ts';
import type { AlgorithmSuiteId, CommitmentPolicy } from '../esdk/types.ts';

/** A usage error found after commander's own parsing (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Suite names as the aws-encryption-cli and the Python SDK spell them, with their ids. */
export const SUITE_NAMES: Readonly<Record<string, number>> = {
  AES_128_GCM_IV12_TAG16: 0x0014,
  AES_192_GCM_IV12_TAG16: 0x0046,
  AES_256_GCM_IV12_TAG16: 0x0078,
  AES_128_GCM_IV12_TAG16_HKDF_SHA256: 0x0114,
  AES_192_GCM_IV12_TAG16_HKDF_SHA256: 0x0146,
  AES_256_GCM_IV12_TAG16_HKDF_SHA256: 0x0178,
  AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256: 0x0214,
  AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384: 0x0346,
  AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384: 0x0378,
  AES_256_GCM_HKDF_SHA512_COMMIT_KEY: 0x0478,
  AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384: 0x0578,
};

export function suiteName(id: number): string {
  return Object.entries(SUITE_NAMES).find(([, value]) => value === id)?.[0] ?? 'UNKNOWN';
}

export function hexSuiteId(id: number): string {
  return `0x${id.toString(16).padStart(4, '0')}`;
}

/** `--suite`: a name above, or its id in hex (0x0578). */
export function parseSuite(value: string): number {
  const byName = SUITE_NAMES[value.toUpperCase()];
  if (byName !== undefined) return byName;
  if (/^0x[0-9a-f]{1,4}$/i.test(value)) {
    const id = Number.parseInt(value.slice(2), 16);
    if (Object.values(SUITE_NAMES).includes(id)) return id;
  }
  throw new InvalidArgumentError(`unknown algorithm suite; use one of ${Object.values(SUITE_NAMES).map(hexSuiteId).join(', ')} or its name`);
}

/**
 * --suite against --commitment-policy, by the SDK's own rule (assertEncryptAllowed), so that a
 * suite the policy forbids is a usage error before any file is created or KMS is called.
 */
export function checkSuiteAllowed(suiteId: number | undefined, policy: CommitmentPolicy): void {
  if (suiteId === undefined) return;
  const suite = getAlgorithmSuite(suiteId as AlgorithmSuiteId);
  try {
    assertEncryptAllowed(policy, suite);
  } catch (error) {
    if (!(error instanceof EsdkError)) throw error;
    const needed = suite.committing ? 'require-encrypt-require-decrypt or require-encrypt-allow-decrypt' : 'forbid-encrypt-allow-decrypt';
    throw new UsageError(`--suite ${hexSuiteId(suiteId)} is ${suite.committing ? '' : 'not '}committing: it needs --commitment-policy ${needed}`);
  }
}

const POLICIES: Readonly<Record<string, CommitmentPolicy>> = {
  'forbid-encrypt-allow-decrypt': 'FORBID_ENCRYPT_ALLOW_DECRYPT',
  'require-encrypt-allow-decrypt': 'REQUIRE_ENCRYPT_ALLOW_DECRYPT',
  'require-encrypt-require-decrypt': 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
};

/** `--commitment-policy`: require-encrypt-require-decrypt (default) and the other two, any case, - or _. */
export function parseCommitmentPolicy(value: string): CommitmentPolicy {
  const policy = POLICIES[value.toLowerCase().replaceAll('_', '-')];
  if (!policy) throw new InvalidArgumentError(`expected one of ${Object.keys(POLICIES).join(', ')}`);
  return policy;
}

export function integerFrom(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
    const parsed = Number(value);
    if (parsed < min || parsed > max) throw new InvalidArgumentError(`must be from ${min} to ${max}`);
    return parsed;
  };
}

/**
 * `--context k=v` pairs (collected as given, checked here rather than by commander, whose message
 * would quote the whole argument, value included). A key given twice is an error rather than a
 * silent overwrite. Messages name keys, never values.
 */
export function parseContext(pairs: readonly string[]): Record<string, string> {
  const context: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new UsageError('--context expects key=value');
    const key = pair.slice(0, equals);
    if (Object.hasOwn(context, key)) throw new UsageError(`--context key ${JSON.stringify(key)} given twice`);
    if (key.startsWith('aws-crypto-')) throw new UsageError(`--context key ${JSON.stringify(key)} is reserved (keys starting with aws-crypto- belong to the SDK)`);
    context[key] = pair.slice(equals + 1);
  }
  return context;
}

export function collect(value: string, previous: string[] = []): string[] {
  if (value.length === 0) throw new InvalidArgumentError('must not be empty');
  return [...previous, value];
}

export type Mode = 'encrypt' | 'decrypt';

/** Everything one run needs, resolved from options and environment. */
export interface RunConfig {
  mode: Mode;
  input: string;
  output: string;
  recursive: boolean;
  suffix: string;
  overwrite: boolean;
  keys: string[];
  discovery: boolean;
  discoveryPartition: string | undefined;
  discoveryAccounts: string[];
  context: Record<string, string>;
  suiteId: number | undefined;
  frameLength: number;
  commitmentPolicy: CommitmentPolicy;
  maxEncryptedDataKeys: number | undefined;
  grantTokens: string[];
  endpoint: string | undefined;
  region: string | undefined;
  profile: string | undefined;
  kmsTimeoutSeconds: number;
  metadataOutput: string | undefined;
  overwriteMetadata: boolean;
  progress: boolean;
  cacheMaxAgeSeconds: number | undefined;
  cacheMaxMessages: number | undefined;
}

/** --endpoint, else AWS_ENDPOINT_URL_KMS, else AWS_ENDPOINT_URL (the SDKs' own variables), else AWS's. */
export function endpointFrom(option: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const endpoint = option ?? (env.AWS_ENDPOINT_URL_KMS || undefined) ?? (env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new UsageError('--endpoint must be a URL such as http://127.0.0.1:7373');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--endpoint must be an http:// or https:// URL');
  }
  return endpoint;
}

/** --region, else AWS_REGION, else AWS_DEFAULT_REGION, else the region of the first key ARN, else the SDK's config file. */
export function regionFrom(option: string | undefined, env: NodeJS.ProcessEnv, keys: readonly string[]): string | undefined {
  const region = option ?? (env.AWS_REGION || undefined) ?? (env.AWS_DEFAULT_REGION || undefined) ?? keys.map((key) => key.split(':')).find((parts) => parts[0] === 'arn' && parts.length === 6)?.[3];
  if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new UsageError('--region must look like an AWS region name (e.g. us-east-1)');
  return region;
}
