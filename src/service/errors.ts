/**
 * The one error catalogue. Each AWS KMS exception is one entry: its wire name, its HTTP status and
 * whether it is the caller's fault. Code raises by name and the transport maps by name — never by
 * matching message text.
 *
 * Messages must never carry a request value that could be secret (plaintext, key bytes,
 * encryption-context values, secret keys). Key ids and ARNs are not secret and AWS echoes them.
 */

interface CatalogueEntry {
  readonly status: number;
  /** false for server faults (5xx): the SDKs retry those. */
  readonly clientFault: boolean;
}

const client = (status = 400): CatalogueEntry => ({ status, clientFault: true });
const server = (status: number): CatalogueEntry => ({ status, clientFault: false });

export const ERROR_CATALOGUE = {
  // Modelled KMS exceptions. AWS answers 400 for every modelled client exception
  // (recorded against AWS in localstack's snapshot), including KMSInvalidStateException,
  // although the Smithy model says 409.
  AlreadyExistsException: client(),
  CloudHsmClusterInUseException: client(),
  CloudHsmClusterInvalidConfigurationException: client(),
  CloudHsmClusterNotActiveException: client(),
  CloudHsmClusterNotFoundException: client(),
  CloudHsmClusterNotRelatedException: client(),
  ConflictException: client(),
  CustomKeyStoreHasCMKsException: client(),
  CustomKeyStoreInvalidStateException: client(),
  CustomKeyStoreNameInUseException: client(),
  CustomKeyStoreNotFoundException: client(),
  DisabledException: client(),
  DryRunOperationException: client(),
  ExpiredImportTokenException: client(),
  IncorrectKeyException: client(),
  IncorrectKeyMaterialException: client(),
  IncorrectTrustAnchorException: client(),
  InvalidAliasNameException: client(),
  InvalidArnException: client(),
  InvalidCiphertextException: client(),
  InvalidGrantIdException: client(),
  InvalidGrantTokenException: client(),
  InvalidImportTokenException: client(),
  InvalidKeyUsageException: client(),
  InvalidMarkerException: client(),
  KMSInvalidMacException: client(),
  KMSInvalidSignatureException: client(),
  KMSInvalidStateException: client(),
  LimitExceededException: client(),
  MalformedPolicyDocumentException: client(),
  NotFoundException: client(),
  TagException: client(),
  UnsupportedOperationException: client(),
  XksKeyAlreadyInUseException: client(),
  XksKeyInvalidConfigurationException: client(),
  XksKeyNotFoundException: client(),
  XksProxyIncorrectAuthenticationCredentialException: client(),
  XksProxyInvalidConfigurationException: client(),
  XksProxyInvalidResponseException: client(),
  XksProxyUriEndpointInUseException: client(),
  XksProxyUriInUseException: client(),
  XksProxyUriUnreachableException: client(),
  XksProxyVpcEndpointServiceInUseException: client(),
  XksProxyVpcEndpointServiceInvalidConfigurationException: client(),
  XksProxyVpcEndpointServiceNotFoundException: client(),
  // IAM's exceptions, for the identity administration API. 400 like every client fault here
  // (IAM's query API answers 404 or 409 for some; clients map by name, not status).
  NoSuchEntityException: client(),
  EntityAlreadyExistsException: client(),
  DeleteConflictException: client(),
  // Common AWS errors every JSON service can answer.
  ValidationException: client(),
  SerializationException: client(),
  UnknownOperationException: client(),
  AccessDeniedException: client(),
  ThrottlingException: client(),
  InvalidSignatureException: client(),
  IncompleteSignatureException: client(),
  MissingAuthenticationTokenException: client(),
  UnrecognizedClientException: client(),
  ExpiredTokenException: client(),
  RequestEntityTooLargeException: client(413),
  // Our faults.
  DependencyTimeoutException: server(503),
  KeyUnavailableException: server(500),
  KMSInternalException: server(500),
  ServiceUnavailableException: server(503),
} as const satisfies Record<string, CatalogueEntry>;

export type KmsErrorName = keyof typeof ERROR_CATALOGUE;

export class KmsError extends Error {
  readonly status: number;
  readonly clientFault: boolean;

  /** `cause`: what went wrong underneath, for the operator's log only (never sent to the caller). */
  constructor(
    readonly errorName: KmsErrorName,
    message = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = errorName;
    const entry = ERROR_CATALOGUE[errorName];
    this.status = entry.status;
    this.clientFault = entry.clientFault;
  }
}

export const isKmsError = (error: unknown): error is KmsError => error instanceof KmsError;

/**
 * Every failure to decrypt or authenticate a ciphertext collapses to this one error with an
 * empty message, as AWS does: the caller learns nothing about which check failed.
 */
export const invalidCiphertext = (): KmsError => new KmsError('InvalidCiphertextException', '');

/** AWS's `1 validation error detected: ...` form, for checks the model cannot express. */
export function validationError(details: string[]): KmsError {
  const count = details.length;
  return new KmsError(
    'ValidationException',
    `${count} validation error${count === 1 ? '' : 's'} detected: ${details.join('; ')}`,
  );
}
