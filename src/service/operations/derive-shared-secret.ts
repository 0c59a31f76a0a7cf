import type { DeriveSharedSecretRequest, DeriveSharedSecretResponse } from '@aws-sdk/client-kms';
import { InvalidPublicKeyError } from '../../crypto/errors.ts';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { resolveKeyFor } from '../authorization.ts';
import { keyArn, requireEnabled, requireKeyUsage, stopIfDryRun } from '../key-resolution.ts';
import { profileOf } from '../key-specs.ts';
import { keyStoreFor } from '../key-stores.ts';
import { currentVersion } from '../key-versions.ts';

/** ECDH between the KMS key's private key and a peer's DER SubjectPublicKeyInfo (NIST curves). */
export const deriveSharedSecret: Operation<DeriveSharedSecretRequest, DeriveSharedSecretResponse> = async (
  context,
  input,
  caller,
) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, {
    allowAlias: true,
    action: 'kms:DeriveSharedSecret',
    conditions: { 'kms:KeyAgreementAlgorithm': input.KeyAgreementAlgorithm },
  });
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'KEY_AGREEMENT', 'DeriveSharedSecret');
  const algorithm = input.KeyAgreementAlgorithm as string;
  if (!(profileOf(key).keyAgreementAlgorithms ?? []).includes(algorithm)) {
    throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  if (input.Recipient !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Strongroom.');
  }
  stopIfDryRun(input.DryRun);
  const version = await currentVersion(context, key);
  let secret;
  try {
    secret = await (await keyStoreFor(context, key)).deriveSharedSecret(version, key.keySpec, input.PublicKey as Uint8Array);
  } catch (error) {
    // AWS answers a public key it cannot use with an empty ValidationException (recorded). Any
    // other failure is in our own key material: a 500, logged.
    if (error instanceof InvalidPublicKeyError) throw new KmsError('ValidationException', '');
    throw error;
  }
  // Buffer.alloc, not Buffer.from: a small Buffer.from copy lands in Node's shared pool.
  const sharedSecret = Buffer.alloc(secret.length);
  secret.exposeSecretBytes().copy(sharedSecret);
  secret.zero();
  return {
    KeyId: keyArn(context, key.keyId),
    SharedSecret: sharedSecret,
    KeyAgreementAlgorithm: 'ECDH',
    KeyOrigin: key.origin as DeriveSharedSecretResponse['KeyOrigin'],
  };
};
