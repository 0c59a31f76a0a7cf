import { EsdkError } from '../errors.ts';
import { generateSigningKey, verificationKeyFromContext } from '../signing.ts';
import { assertDecryptAllowed, assertEncryptAllowed, checkPolicy, defaultSuiteId, getAlgorithmSuite } from '../suites.ts';
import {
  PUBLIC_KEY_CONTEXT_KEY,
  type CryptographicMaterialsManager,
  type DecryptionMaterials,
  type DecryptionMaterialsRequest,
  type EncryptionMaterials,
  type EncryptionMaterialsRequest,
  type Keyring,
} from '../types.ts';

/**
 * Default CMM (framework/default-cmm.md): picks the suite, adds the ECDSA key pair and the
 * `aws-crypto-public-key` context entry for signing suites, enforces the commitment policy, and
 * asks the keyring for the data key.
 */
export class DefaultCryptographicMaterialsManager implements CryptographicMaterialsManager {
  readonly keyring: Keyring;

  constructor(keyring: Keyring) {
    if (!keyring || typeof keyring.onEncrypt !== 'function' || typeof keyring.onDecrypt !== 'function') {
      throw new EsdkError('InvalidArgument', 'the default materials manager needs a keyring');
    }
    this.keyring = keyring;
  }

  async getEncryptionMaterials(request: EncryptionMaterialsRequest): Promise<EncryptionMaterials> {
    const policy = checkPolicy(request.commitmentPolicy);
    const suite = getAlgorithmSuite(request.suiteId ?? defaultSuiteId(policy));
    assertEncryptAllowed(policy, suite);
    const context: Record<string, string> = { ...request.encryptionContext };
    // The reserved key is ours to set; a caller-supplied one would be taken for the signing key.
    if (Object.hasOwn(context, PUBLIC_KEY_CONTEXT_KEY)) {
      throw new EsdkError('InvalidArgument', `encryption context key ${PUBLIC_KEY_CONTEXT_KEY} is reserved`);
    }
    const required = [...(request.requiredEncryptionContextKeys ?? [])];
    for (const key of required) {
      if (!Object.hasOwn(context, key)) throw new EsdkError('ContextMismatch', 'a required encryption context key is not in the encryption context');
    }
    let signingKey;
    if (suite.signature) {
      const pair = generateSigningKey(suite.signature.curve);
      signingKey = pair.privateKey;
      context[PUBLIC_KEY_CONTEXT_KEY] = pair.publicKeyBase64;
    }
    const materials = await this.keyring.onEncrypt({
      suite,
      encryptionContext: context,
      encryptedDataKeys: [],
      plaintextDataKey: undefined,
      signingKey,
      requiredEncryptionContextKeys: required,
    });
    if (!materials.plaintextDataKey || materials.plaintextDataKey.length !== suite.keyLength) {
      throw new EsdkError('KeyringFailure', 'the keyring did not produce a data key of the suite length');
    }
    if (materials.encryptedDataKeys.length === 0) throw new EsdkError('KeyringFailure', 'the keyring produced no encrypted data key');
    return materials;
  }

  async decryptMaterials(request: DecryptionMaterialsRequest): Promise<DecryptionMaterials> {
    const policy = checkPolicy(request.commitmentPolicy);
    const suite = getAlgorithmSuite(request.suiteId);
    assertDecryptAllowed(policy, suite);
    const context: Record<string, string> = { ...request.encryptionContext };
    const required: string[] = [];
    // default-cmm.md: reproduced values must equal stored ones; reproduced-only keys are the
    // "required" keys the encryptor authenticated without storing.
    for (const [key, value] of Object.entries(request.reproducedEncryptionContext ?? {})) {
      if (Object.hasOwn(context, key)) {
        if (context[key] !== value) throw new EsdkError('ContextMismatch', 'the reproduced encryption context does not match the message');
      } else {
        context[key] = value;
        required.push(key);
      }
    }
    let verificationKey;
    const publicKey = Object.hasOwn(request.encryptionContext, PUBLIC_KEY_CONTEXT_KEY) ? request.encryptionContext[PUBLIC_KEY_CONTEXT_KEY] : undefined;
    if (suite.signature) {
      if (publicKey === undefined) throw new EsdkError('MalformedMessage', 'malformed message: signing suite without a public key in the context');
      verificationKey = verificationKeyFromContext(suite, publicKey);
    } else if (publicKey !== undefined) {
      throw new EsdkError('MalformedMessage', 'malformed message: non-signing suite with a public key in the context');
    }
    const materials = await this.keyring.onDecrypt(
      { suite, encryptionContext: context, plaintextDataKey: undefined, verificationKey, requiredEncryptionContextKeys: required },
      request.encryptedDataKeys,
    );
    if (!materials.plaintextDataKey) throw new EsdkError('NoDecryptableKey', 'no keyring could decrypt any of the encrypted data keys');
    if (materials.plaintextDataKey.length !== suite.keyLength) throw new EsdkError('KeyringFailure', 'the keyring returned a data key of the wrong length');
    return materials;
  }
}
