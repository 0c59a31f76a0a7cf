import type { CustomKeyStoreConnectError } from '../../keystores/types.ts';
import type { CustomKeyStoreRecord } from '../../storage/types.ts';
import { KmsError, type KmsErrorName } from '../errors.ts';

/**
 * What CreateCustomKeyStore / UpdateCustomKeyStore answer when the backend's check fails: AWS's
 * exception for the ConnectionErrorCode the check found.
 */
const CHECK_ERRORS: Record<string, KmsErrorName> = {
  CLUSTER_NOT_FOUND: 'CloudHsmClusterNotFoundException',
  INSUFFICIENT_CLOUDHSM_HSMS: 'CloudHsmClusterInvalidConfigurationException',
  NETWORK_ERRORS: 'CloudHsmClusterNotActiveException',
  XKS_PROXY_NOT_REACHABLE: 'XksProxyUriUnreachableException',
  XKS_PROXY_TIMED_OUT: 'XksProxyUriUnreachableException',
  XKS_PROXY_ACCESS_DENIED: 'XksProxyIncorrectAuthenticationCredentialException',
  XKS_PROXY_INVALID_RESPONSE: 'XksProxyInvalidResponseException',
  XKS_PROXY_INVALID_CONFIGURATION: 'XksProxyInvalidConfigurationException',
  XKS_PROXY_INVALID_TLS_CONFIGURATION: 'XksProxyInvalidConfigurationException',
};

export function checkError(record: CustomKeyStoreRecord, error: CustomKeyStoreConnectError): KmsError {
  const name = CHECK_ERRORS[error.connectionErrorCode];
  if (name) return new KmsError(name, error.message);
  return new KmsError('KMSInternalException', `The ${record.type} custom key store could not be checked.`);
}
