import { parentPort, workerData } from 'node:worker_threads';
import { SqliteAuditStore } from '../../storage/sqlite/audit-store.ts';
import { digestSealer } from './digests.ts';
import { serialiseError, type AuditWorkerData, type AuditWorkerReply, type AuditWorkerRequest } from './writer.ts';

/** The audit writer thread (writer.ts): its own connection; commits one at a time, in order. */

const data = workerData as AuditWorkerData;
const port = parentPort as NonNullable<typeof parentPort>;
const post = (reply: AuditWorkerReply) => port.postMessage(reply);

let store: SqliteAuditStore | undefined;
try {
  store = new SqliteAuditStore(data.path, data.storeOptions);
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'ready', error: serialiseError(error) });
  process.exit(1);
}
const seal = digestSealer({ privateKey: data.privateKey, publicKeyId: data.publicKeyId });

port.on('message', async (request: AuditWorkerRequest) => {
  const open = store as SqliteAuditStore;
  if (request.type === 'close') {
    await open.close();
    port.close();
    return;
  }
  try {
    post({ type: 'result', id: request.id, result: await open.append(request.entries, seal, { probe: request.probe }) });
  } catch (error) {
    post({ type: 'result', id: request.id, error: serialiseError(error) });
  }
});
