/** The HSM cluster's key store held to the same SYMMETRIC_DEFAULT behaviour as every store (conformance.ts). */
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HSM_CIPHERTEXT_OVERHEAD, HSM_FORMAT_VERSION } from '../../src/keystores/pkcs11/ciphertext.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { symmetricConformance } from './conformance.ts';
import { SOFTHSM_MODULE, SoftHsm } from './softhsm.ts';

const hsm = SoftHsm.get();
const tokens = [hsm.createToken('conf-a'), hsm.createToken('conf-b')];

symmetricConformance('HsmClusterKeyStore (two SoftHSMv2 members)', async () => {
  const cluster = await HsmCluster.initialise(
    {
      clusterId: `conformance-${randomUuid()}`,
      members: tokens.map(
        (token) => new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions: 4 }),
      ),
    },
    new Map(tokens.map((token) => [token.label, SecretBytes.from(Buffer.from(token.soPin))])),
  );
  return { store: new HsmClusterKeyStore(cluster), overhead: HSM_CIPHERTEXT_OVERHEAD, formatVersion: HSM_FORMAT_VERSION, close: () => cluster.close() };
});

// Members that call C_Encrypt/C_Decrypt on the event loop (`--inline-calls`) keep every behaviour,
// tampering and failed tags included.
const inlineTokens = [hsm.createToken('conf-inline-a'), hsm.createToken('conf-inline-b')];

symmetricConformance('HsmClusterKeyStore (two SoftHSMv2 members, inline calls)', async () => {
  const cluster = await HsmCluster.initialise(
    {
      clusterId: `conformance-inline-${randomUuid()}`,
      members: inlineTokens.map(
        (token) =>
          new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions: 4, inlineCalls: true }),
      ),
    },
    new Map(inlineTokens.map((token) => [token.label, SecretBytes.from(Buffer.from(token.soPin))])),
  );
  return { store: new HsmClusterKeyStore(cluster), overhead: HSM_CIPHERTEXT_OVERHEAD, formatVersion: HSM_FORMAT_VERSION, close: () => cluster.close() };
});
