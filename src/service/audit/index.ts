export { AuditLog, AuditWriteError, auditPaths, openAuditLog, type AuditLogOptions, type OpenAuditLogOptions, type OpenedAuditLog } from './audit-log.ts';
export { digestSealer, digestText, parseDigest, type Digest } from './digests.ts';
export { digestLine, eventLine, exportLines } from './export.ts';
export {
  AUDIT_SIGNING_KEY_BINDING,
  auditPublicKey,
  loadAuditSigningKey,
  loadOrCreateAuditSigningKey,
  newEd25519Pkcs8,
  publicKeyIdOf,
  type AuditSigningKey,
} from './signing-key.ts';
export { verifyExportFile, verifyStore, verifyTrail, type VerifyOptions, type VerifyResult } from './verify.ts';
export { InlineAuditWriter, WorkerAuditWriter, type AuditWriter } from './writer.ts';
