/**
 * CustomKeyStoreConnections (service/custom-key-stores/connections.ts): when a lazy connection is
 * tried again. A refused password is not retried until the store's configuration changes: every
 * retry would be one more failed login counted by the HSM towards locking the crypto user, and
 * /readyz and every request would retry it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Sealer } from '../../src/crypto/seal.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { CustomKeyStoreConnectError, type ConnectedKeyStore, type CustomKeyStoreBackend } from '../../src/keystores/types.ts';
import { CustomKeyStoreConnections, customKeyStoreSecretBinding } from '../../src/service/custom-key-stores/connections.ts';
import type { CustomKeyStoreRecord } from '../../src/storage/types.ts';

const sealer = new Sealer(SecretBytes.random(32));

function record(password: string): CustomKeyStoreRecord {
  const customKeyStoreId = 'cks-0123456789abcdef0';
  return {
    customKeyStoreId,
    name: 'store',
    type: 'AWS_CLOUDHSM',
    createdAt: new Date(0),
    connectionState: 'CONNECTED',
    cloudHsmClusterId: 'cluster-abcdefghijk',
    sealedSecret: sealer.seal(Buffer.from(password), customKeyStoreSecretBinding(customKeyStoreId)),
  } as CustomKeyStoreRecord;
}

function backendFailingWith(code: string): { backend: CustomKeyStoreBackend; attempts: () => number } {
  let attempts = 0;
  const backend = {
    check: async () => {},
    connect: async (): Promise<ConnectedKeyStore> => {
      attempts++;
      throw new CustomKeyStoreConnectError(code, `refused (${code})`);
    },
  } as unknown as CustomKeyStoreBackend;
  return { backend, attempts: () => attempts };
}

describe('CustomKeyStoreConnections', () => {
  it('does not try a refused password again until the store changes', async () => {
    const { backend, attempts } = backendFailingWith('INVALID_CREDENTIALS');
    const connections = new CustomKeyStoreConnections({ AWS_CLOUDHSM: backend });
    const stored = record('wrong-password');
    for (let i = 0; i < 3; i++) await assert.rejects(connections.open(sealer, stored), { connectionErrorCode: 'INVALID_CREDENTIALS' });
    assert.equal(attempts(), 1);
    // UpdateCustomKeyStore with another password: a new configuration, tried once.
    const updated = record('new-password');
    await assert.rejects(connections.open(sealer, updated), { connectionErrorCode: 'INVALID_CREDENTIALS' });
    await assert.rejects(connections.open(sealer, updated));
    assert.equal(attempts(), 2);
  });

  it('tries again after any other failure (an HSM that was down may be back)', async () => {
    const { backend, attempts } = backendFailingWith('INSUFFICIENT_CLOUDHSM_HSMS');
    const connections = new CustomKeyStoreConnections({ AWS_CLOUDHSM: backend });
    const stored = record('right-password');
    for (let i = 0; i < 3; i++) {
      await assert.rejects(connections.open(sealer, stored), { connectionErrorCode: 'INSUFFICIENT_CLOUDHSM_HSMS' });
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(attempts(), 3);
  });
});
