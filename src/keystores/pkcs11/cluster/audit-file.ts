/**
 * The per-cluster HSM audit log, independent of the KMS trail: one JSON line per member event
 * (key created, replicated, destroyed, owed operations applied at resync, members taken out and
 * why). Lines name members, operations and CKA_IDs (hex), never key bytes, plaintext or PINs.
 * Lifecycle events are rare, so each is appended synchronously: it is on disk when the create or
 * destroy that caused it returns. Created 0600.
 */
import { appendFileSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { HsmAuditEvent } from './cluster-types.ts';

export function hsmAuditFile(path: string, clusterId: string, now: () => Date = () => new Date()): (event: HsmAuditEvent) => void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  return (event) => {
    appendFileSync(path, `${JSON.stringify({ time: now().toISOString(), clusterId, ...event })}\n`);
  };
}
