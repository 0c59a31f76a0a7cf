/** Every key store, held to the same SYMMETRIC_DEFAULT behaviour (conformance.ts). */
import { Sealer } from '../../src/crypto/seal.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { SYMMETRIC_CIPHERTEXT_OVERHEAD } from '../../src/crypto/symmetric-ciphertext.ts';
import { HSM_CIPHERTEXT_OVERHEAD, HSM_FORMAT_VERSION } from '../../src/keystores/pkcs11/ciphertext.ts';
import { Pkcs11KeyStore } from '../../src/keystores/pkcs11/pkcs11-key-store.ts';
import { SoftwareKeyStore } from '../../src/keystores/software/software-key-store.ts';
import { symmetricConformance } from './conformance.ts';
import { SOFTHSM_MODULE, SoftHsm } from './softhsm.ts';

// As src/cli/instance.ts opens it: a Sealer over a root key (here random, not from a file).
symmetricConformance('SoftwareKeyStore', async () => {
  const rootKey = SecretBytes.random(32);
  return {
    store: new SoftwareKeyStore(new Sealer(rootKey)),
    overhead: SYMMETRIC_CIPHERTEXT_OVERHEAD,
    formatVersion: 0x01,
    close: async () => rootKey.zero(),
  };
});

symmetricConformance('Pkcs11KeyStore (SoftHSMv2)', async () => {
  const token = SoftHsm.get().createToken('conformance');
  const store = await Pkcs11KeyStore.open({
    modulePath: SOFTHSM_MODULE,
    tokenLabel: token.label,
    pin: Buffer.from(token.pin),
    sessions: 4,
  });
  return { store, overhead: HSM_CIPHERTEXT_OVERHEAD, formatVersion: HSM_FORMAT_VERSION, close: () => store.close() };
});
