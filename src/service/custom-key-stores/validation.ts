import type { CreateCustomKeyStoreRequest, UpdateCustomKeyStoreRequest } from '@aws-sdk/client-kms';
import type { CustomKeyStoreRecord, CustomKeyStoreType, XksProxyConfiguration } from '../../storage/types.ts';
import { KmsError } from '../errors.ts';

/** AWS KMS quota: custom key stores per account and Region. */
export const MAX_CUSTOM_KEY_STORES = 10;

const CLOUDHSM_ONLY = ['CloudHsmClusterId', 'TrustAnchorCertificate', 'KeyStorePassword'] as const;
const XKS_ONLY = [
  'XksProxyUriEndpoint',
  'XksProxyUriPath',
  'XksProxyAuthenticationCredential',
  'XksProxyConnectivity',
  'XksProxyVpcEndpointServiceName',
  'XksProxyVpcEndpointServiceOwner',
] as const;

type StoreInput = Partial<Record<(typeof CLOUDHSM_ONLY)[number] | (typeof XKS_ONLY)[number], unknown>>;

/** A parameter of the other store type is a mistake the caller should hear about, not a silent no-op. */
export function refuseOtherTypeParameters(type: CustomKeyStoreType, input: StoreInput): void {
  const foreign = type === 'AWS_CLOUDHSM' ? XKS_ONLY : CLOUDHSM_ONLY;
  for (const name of foreign) {
    if (input[name] !== undefined) {
      throw new KmsError('ValidationException', `${name} is not valid for a custom key store of type ${type}.`);
    }
  }
}

export function requireParameters(type: CustomKeyStoreType, input: StoreInput, names: readonly string[]): void {
  const missing = names.filter((name) => input[name as keyof StoreInput] === undefined);
  if (missing.length > 0) {
    throw new KmsError(
      'ValidationException',
      `A custom key store of type ${type} requires ${missing.join(', ')}.`,
    );
  }
}

/** A PEM certificate, as AWS expects the cluster's trust anchor (the content is not interpreted further). */
export function checkTrustAnchor(pem: string): void {
  if (!/^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*$/.test(pem.trim() + '\n')) {
    throw new KmsError('IncorrectTrustAnchorException', 'The trust anchor certificate is not a PEM-encoded X.509 certificate.');
  }
}

/**
 * The proxy configuration of an EXTERNAL_KEY_STORE request. Strongroom reaches proxies over the
 * network directly (PUBLIC_ENDPOINT); VPC endpoint services are an AWS networking feature.
 */
export function xksProxyConfiguration(
  input: Pick<
    CreateCustomKeyStoreRequest & UpdateCustomKeyStoreRequest,
    'XksProxyUriEndpoint' | 'XksProxyUriPath' | 'XksProxyAuthenticationCredential' | 'XksProxyConnectivity'
  >,
  previous?: XksProxyConfiguration,
): XksProxyConfiguration {
  const connectivity = input.XksProxyConnectivity ?? previous?.connectivity ?? 'PUBLIC_ENDPOINT';
  if (connectivity !== 'PUBLIC_ENDPOINT') {
    throw new KmsError(
      'UnsupportedOperationException',
      'XksProxyConnectivity VPC_ENDPOINT_SERVICE is not supported by Strongroom; use PUBLIC_ENDPOINT.',
    );
  }
  const uriEndpoint = input.XksProxyUriEndpoint ?? previous?.uriEndpoint;
  const uriPath = input.XksProxyUriPath ?? previous?.uriPath;
  const accessKeyId = input.XksProxyAuthenticationCredential?.AccessKeyId ?? previous?.accessKeyId;
  if (uriEndpoint === undefined || uriPath === undefined || accessKeyId === undefined) {
    throw new KmsError('ValidationException', 'An external key store needs XksProxyUriEndpoint, XksProxyUriPath and credentials.');
  }
  return { connectivity, uriEndpoint, uriPath, accessKeyId };
}

/** The conflicts AWS checks across an account's stores: names, clusters and proxy URIs. */
export function checkConflicts(
  existing: readonly CustomKeyStoreRecord[],
  candidate: Pick<CustomKeyStoreRecord, 'customKeyStoreId' | 'name' | 'cloudHsmClusterId' | 'xksProxy'>,
): void {
  for (const other of existing) {
    if (other.customKeyStoreId === candidate.customKeyStoreId) continue;
    if (other.name === candidate.name) {
      throw new KmsError('CustomKeyStoreNameInUseException', `A custom key store named ${candidate.name} already exists.`);
    }
    if (candidate.cloudHsmClusterId !== undefined && other.cloudHsmClusterId === candidate.cloudHsmClusterId) {
      throw new KmsError(
        'CloudHsmClusterInUseException',
        `Cluster ${candidate.cloudHsmClusterId} is already associated with custom key store ${other.customKeyStoreId}.`,
      );
    }
    if (
      candidate.xksProxy !== undefined &&
      other.xksProxy !== undefined &&
      other.xksProxy.uriEndpoint === candidate.xksProxy.uriEndpoint &&
      other.xksProxy.uriPath === candidate.xksProxy.uriPath
    ) {
      throw new KmsError(
        'XksProxyUriInUseException',
        `The XKS proxy URI is already associated with custom key store ${other.customKeyStoreId}.`,
      );
    }
  }
}
