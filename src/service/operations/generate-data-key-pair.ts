import type {
  GenerateDataKeyPairRequest,
  GenerateDataKeyPairResponse,
  GenerateDataKeyPairWithoutPlaintextRequest,
  GenerateDataKeyPairWithoutPlaintextResponse,
} from '@aws-sdk/client-kms';
import { generateKeyPair, privateKeyToPkcs8, type AsymmetricKeySpec } from '../../crypto/index.ts';
import type { SecretBytes } from '../../crypto/secret-bytes.ts';
import type { Caller, Operation, ServiceContext } from '../context.ts';
import { encryptWithCurrentVersion, keyForEncrypt } from '../encryption.ts';
import { KmsError } from '../errors.ts';
import { keyArn, stopIfDryRun } from '../key-resolution.ts';
import { UNSUPPORTED_KEY_SPECS } from '../key-specs.ts';

/**
 * A key pair made here for the caller (not stored): the private key as PKCS#8 DER, once in the
 * clear (unless WithoutPlaintext) and once encrypted under a symmetric KMS key.
 */
async function makeDataKeyPair(
  context: ServiceContext,
  input: GenerateDataKeyPairRequest | GenerateDataKeyPairWithoutPlaintextRequest,
  operation: string,
  caller: Caller,
) {
  const keyPairSpec = input.KeyPairSpec as string;
  if (UNSUPPORTED_KEY_SPECS.has(keyPairSpec)) {
    throw new KmsError('UnsupportedOperationException', `KeyPairSpec ${keyPairSpec} is not supported by Strongroom.`);
  }
  const target = await keyForEncrypt(context, caller, input.KeyId as string, operation, undefined, {
    symmetricOnly: true,
    access: { encryptionContext: input.EncryptionContext, conditions: { 'kms:DataKeyPairSpec': keyPairSpec } },
  });
  if (target.key.customKeyStoreId !== undefined) {
    // AWS: "You cannot use an asymmetric KMS key or a KMS key in a custom key store" (GenerateDataKeyPair).
    throw new KmsError('UnsupportedOperationException', `${keyArn(context, target.key.keyId)} origin is ${target.key.origin} which is not valid for this operation.`);
  }
  stopIfDryRun(input.DryRun);
  const generated = await generateKeyPair(keyPairSpec as AsymmetricKeySpec);
  // PKCS#8 DER as AWS returns it (and checked to be a key of the spec).
  const pair = { privateKey: privateKeyToPkcs8(keyPairSpec as AsymmetricKeySpec, generated.privateKey), publicKey: generated.publicKey };
  generated.privateKey.zero();
  const { ciphertextBlob, version } = await encryptWithCurrentVersion(
    context,
    target,
    pair.privateKey.exposeSecretBytes(),
    input.EncryptionContext,
  );
  return { pair, ciphertextBlob, keyArn: keyArn(context, target.key.keyId), keyMaterialId: version.keyMaterialId, keyPairSpec };
}

export const generateDataKeyPair: Operation<GenerateDataKeyPairRequest, GenerateDataKeyPairResponse> = async (
  context,
  input,
  caller,
) => {
  if (input.Recipient !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Strongroom.');
  }
  const made = await makeDataKeyPair(context, input, 'GenerateDataKeyPair', caller);
  return {
    PrivateKeyCiphertextBlob: made.ciphertextBlob,
    // A plain copy for the response; the SecretBytes is wiped now.
    PrivateKeyPlaintext: copyAndWipe(made.pair.privateKey),
    PublicKey: made.pair.publicKey,
    KeyId: made.keyArn,
    KeyPairSpec: made.keyPairSpec as GenerateDataKeyPairResponse['KeyPairSpec'],
    KeyMaterialId: made.keyMaterialId,
  };
};

export const generateDataKeyPairWithoutPlaintext: Operation<
  GenerateDataKeyPairWithoutPlaintextRequest,
  GenerateDataKeyPairWithoutPlaintextResponse
> = async (context, input, caller) => {
  const made = await makeDataKeyPair(context, input, 'GenerateDataKeyPairWithoutPlaintext', caller);
  made.pair.privateKey.zero();
  return {
    PrivateKeyCiphertextBlob: made.ciphertextBlob,
    PublicKey: made.pair.publicKey,
    KeyId: made.keyArn,
    KeyPairSpec: made.keyPairSpec as GenerateDataKeyPairWithoutPlaintextResponse['KeyPairSpec'],
    KeyMaterialId: made.keyMaterialId,
  };
};

function copyAndWipe(secret: SecretBytes): Buffer {
  const copy = Buffer.alloc(secret.length);
  secret.exposeSecretBytes().copy(copy);
  secret.zero();
  return copy;
}
