/**
 * Micro-benchmark (not a test): AES-256-GCM encryption of 32 B and 4 KB through SoftHSMv2 vs
 * node:crypto, to check issue 6's "SoftHSMv2 AES-GCM of 4 KB runs at ~0.6–0.7× node:crypto".
 *
 *   node --import tsx bench/pkcs11-micro.ts [seconds-per-case]
 *
 * Cases, each as operations per second over the same wall-clock window:
 *   node:crypto           createCipheriv/update/final/getAuthTag on the main thread
 *   pkcs11 sync           C_EncryptInit + C_Encrypt, both blocking the event loop (the ceiling
 *                         of one thread talking to the token)
 *   pkcs11 async ×N       C_EncryptInit + C_EncryptAsync on N sessions at once (libuv pool)
 *   store software ×N     SoftwareKeyStore.encrypt (v1 blob: KDF + GCM), N in flight
 *   store pkcs11 ×N       Pkcs11KeyStore.encrypt (v2 blob: GCM in the token), N in flight
 * It makes its own token in a temporary directory and removes it.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';

const MODULE = process.env.STRONGROOM_TEST_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
const SECONDS = Number(process.argv[2] ?? 2);
const PIN = 'bench-pin-0000';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-pkcs11-bench-'));
mkdirSync(join(dir, 'tokens'), { mode: 0o700 });
writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', PIN, '--so-pin', 'bench-so-0000'], { stdio: 'ignore' });

// Imported after SOFTHSM2_CONF is set (SoftHSM reads it at C_Initialize).
const { Pkcs11KeyStore } = await import('../src/keystores/pkcs11/pkcs11-key-store.ts');
const { SoftwareKeyStore } = await import('../src/keystores/software/software-key-store.ts');
const { Sealer } = await import('../src/crypto/seal.ts');
const { SecretBytes } = await import('../src/crypto/secret-bytes.ts');
const { randomUuid } = await import('../src/crypto/random.ts');

async function measure(name: string, run: () => Promise<void> | void, concurrency = 1): Promise<number> {
  const window = async (ms: number) => {
    let count = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          await run();
          count++;
        }
      }),
    );
    return count / (ms / 1000);
  };
  await window(300); // warm-up
  const rate = await window(SECONDS * 1000);
  console.log(`  ${name.padEnd(28)} ${Math.round(rate).toLocaleString('en-US').padStart(10)} ops/s`);
  return rate;
}

const store = await Pkcs11KeyStore.open({ modulePath: MODULE, tokenLabel: 'bench', pin: Buffer.from(PIN), sessions: 4 });
const software = new SoftwareKeyStore(new Sealer(SecretBytes.random(32)));
const keyId = randomUuid();
const hsmHandle = { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
const swHandle = { keyId, version: 1, sealedMaterial: await software.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
const api = store.token.api;
const objectHandle = await store.token.withSession((session) => {
  api.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_ID, value: hsmHandle.sealedMaterial.subarray(6) }]);
  const [found] = api.C_FindObjects(session, 1);
  api.C_FindObjectsFinal(session);
  return found;
});
const nodeKey = randomBytes(32);
const aad = randomBytes(40);
const mechanism = (iv: Buffer): pkcs11js.Mechanism => ({
  mechanism: pkcs11js.CKM_AES_GCM,
  parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, aad, ivBits: 96, tagBits: 128 } as pkcs11js.AesGCM,
});

console.log(`Node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, ${SECONDS} s per case`);
const results: Record<string, Record<string, number>> = {};
for (const size of [32, 4096]) {
  const plaintext = randomBytes(size);
  const out = Buffer.alloc(size + 16);
  console.log(`\nAES-256-GCM encrypt, ${size} B`);
  const r: Record<string, number> = {};
  r.node = await measure('node:crypto', () => {
    const cipher = createCipheriv('aes-256-gcm', nodeKey, randomBytes(12));
    cipher.setAAD(aad);
    cipher.update(plaintext);
    cipher.final();
    cipher.getAuthTag();
  });
  r.pkcs11Sync = await measure('pkcs11 sync (1 session)', () =>
    store.token.withSession((session) => {
      api.C_EncryptInit(session, mechanism(randomBytes(12)), objectHandle);
      api.C_Encrypt(session, plaintext, out);
    }),
  );
  r.pkcs11Async1 = await measure('pkcs11 async ×1', () =>
    store.token.withSession(async (session) => {
      api.C_EncryptInit(session, mechanism(randomBytes(12)), objectHandle);
      await api.C_EncryptAsync(session, plaintext, Buffer.alloc(size + 16));
    }),
  );
  r.pkcs11Async4 = await measure('pkcs11 async ×4', () =>
    store.token.withSession(async (session) => {
      api.C_EncryptInit(session, mechanism(randomBytes(12)), objectHandle);
      await api.C_EncryptAsync(session, plaintext, Buffer.alloc(size + 16));
    }), 4);
  r.storeSoftware = await measure('store software ×4', async () => void (await software.encrypt(swHandle, plaintext, { a: 'b' })), 4);
  r.storePkcs11 = await measure('store pkcs11 ×4', async () => void (await store.encrypt(hsmHandle, plaintext, { a: 'b' })), 4);
  r.storePkcs11x16 = await measure('store pkcs11 ×16', async () => void (await store.encrypt(hsmHandle, plaintext, { a: 'b' })), 16);
  const ratio = (value: number) => (value / r.node).toFixed(2);
  console.log(
    `  ratios to node:crypto: pkcs11 sync ${ratio(r.pkcs11Sync)}×, async×1 ${ratio(r.pkcs11Async1)}×, async×4 ${ratio(r.pkcs11Async4)}×;` +
      ` store pkcs11/software ${(r.storePkcs11 / r.storeSoftware).toFixed(2)}×`,
  );
  results[size] = r;
}

await store.close();
rmSync(dir, { recursive: true, force: true });
