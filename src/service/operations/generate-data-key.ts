import { SecretBytes } from '../../crypto/secret-bytes.ts';
import type {
  GenerateDataKeyRequest,
  GenerateDataKeyResponse,
  GenerateDataKeyWithoutPlaintextRequest,
  GenerateDataKeyWithoutPlaintextResponse,
} from '@aws-sdk/client-kms';
import type { Caller, Operation, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { keyArn, stopIfDryRun } from '../key-resolution.ts';
import { encryptWithCurrentVersion, keyForEncrypt } from '../encryption.ts';

const DATA_KEY_BYTES: Record<string, number> = { AES_128: 16, AES_256: 32 };

function dataKeyLength(input: { KeySpec?: string; NumberOfBytes?: number }): number {
  if ((input.KeySpec === undefined) === (input.NumberOfBytes === undefined)) {
    throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
  }
  return input.NumberOfBytes ?? DATA_KEY_BYTES[input.KeySpec as string];
}

async function makeDataKey(
  context: ServiceContext,
  input: GenerateDataKeyRequest | GenerateDataKeyWithoutPlaintextRequest,
  operation: string,
  caller: Caller,
) {
  const length = dataKeyLength(input);
  const target = await keyForEncrypt(context, caller, input.KeyId as string, operation, undefined, {
    symmetricOnly: true,
    access: { encryptionContext: input.EncryptionContext },
  });
  stopIfDryRun(input.DryRun);
  // Drawn straight from the CSPRNG, not the salt/IV pool: a pool would hold future data keys.
  const dataKey = SecretBytes.random(length);
  const plaintext = dataKey.exposeSecretBytes();
  const { ciphertextBlob, version } = await encryptWithCurrentVersion(context, target, plaintext, input.EncryptionContext);
  return { plaintext, ciphertextBlob, keyArn: keyArn(context, target.key.keyId), keyMaterialId: version.keyMaterialId };
}

export const generateDataKey: Operation<GenerateDataKeyRequest, GenerateDataKeyResponse> = async (context, input, caller) => {
  if (input.Recipient !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Strongroom.');
  }
  const dataKey = await makeDataKey(context, input, 'GenerateDataKey', caller);
  return {
    CiphertextBlob: dataKey.ciphertextBlob,
    Plaintext: dataKey.plaintext,
    KeyId: dataKey.keyArn,
    KeyMaterialId: dataKey.keyMaterialId,
  };
};

export const generateDataKeyWithoutPlaintext: Operation<
  GenerateDataKeyWithoutPlaintextRequest,
  GenerateDataKeyWithoutPlaintextResponse
> = async (context, input, caller) => {
  const dataKey = await makeDataKey(context, input, 'GenerateDataKeyWithoutPlaintext', caller);
  dataKey.plaintext.fill(0);
  return { CiphertextBlob: dataKey.ciphertextBlob, KeyId: dataKey.keyArn, KeyMaterialId: dataKey.keyMaterialId };
};
