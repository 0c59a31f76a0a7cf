import { open, readFile, stat } from 'node:fs/promises';
import { SecretBytes } from '../crypto/secret-bytes.ts';

const ROOT_KEY_BYTES = 32;
const FILE_HEADER = 'strongroom-root-key-v1\n';

/**
 * The embedded default root key source: 32 random bytes in a file created 0600 on first start
 * (O_EXCL, so two starts cannot both create one). The file holds a header line and the key in
 * base64. A file readable by group or others is refused, like ssh refuses a loose private key.
 */
export async function loadOrCreateRootKeyFile(path: string): Promise<{ rootKey: SecretBytes; created: boolean }> {
  try {
    const handle = await open(path, 'wx', 0o600);
    const rootKey = SecretBytes.random(ROOT_KEY_BYTES);
    try {
      await handle.writeFile(FILE_HEADER + rootKey.exposeSecretBytes().toString('base64') + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { rootKey, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(
      `root key file ${path} is readable by other users (mode ${(info.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  const text = await readFile(path, 'utf8');
  if (!text.startsWith(FILE_HEADER)) throw new Error(`root key file ${path} is not a Strongroom root key file`);
  const bytes = Buffer.from(text.slice(FILE_HEADER.length).trim(), 'base64');
  if (bytes.length !== ROOT_KEY_BYTES) throw new Error(`root key file ${path} is damaged (wrong key length)`);
  const rootKey = SecretBytes.from(bytes);
  bytes.fill(0);
  return { rootKey, created: false };
}
