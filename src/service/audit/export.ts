import type { AuditDigestRow, AuditStore } from '../../storage/audit-types.ts';

/**
 * The export format (docs/audit.md "Export"): JSON Lines in chain order, each digest after the
 * event it seals, the stored texts embedded verbatim.
 */

export const EVENT_LINE_PREFIX = '{"type":"event","seq":';
export const DIGEST_LINE_PREFIX = '{"type":"digest","digest":';

export function eventLine(seq: number, hash: Uint8Array, text: string): string {
  return `${EVENT_LINE_PREFIX}${seq},"hash":"${Buffer.from(hash).toString('hex')}","event":${text}}`;
}

export function digestLine(text: string, signature: Uint8Array): string {
  return `${DIGEST_LINE_PREFIX}${text},"signature":"${Buffer.from(signature).toString('base64')}"}`;
}

/**
 * The trail as export lines (no newlines), read page by page. It covers the trail as it was when
 * the export began; anything appended meanwhile is left for the next export. The store's rows
 * are written as they are, gaps and all, so an export of a damaged trail fails verification.
 */
export async function* exportLines(store: AuditStore, options: { pageSize?: number } = {}): AsyncGenerator<string> {
  const pageSize = options.pageSize ?? 1000;
  const { lastSeq, lastDigestSeq } = await store.tail();
  let digests: AuditDigestRow[] = [];
  let digestIndex = 0;
  let nextDigest = 1;
  const peekDigest = async (): Promise<AuditDigestRow | undefined> => {
    if (nextDigest > lastDigestSeq) return undefined;
    if (digestIndex >= digests.length) {
      digests = await store.readDigests(nextDigest, pageSize);
      digestIndex = 0;
    }
    return digests[digestIndex];
  };
  const takeDigest = (digest: AuditDigestRow): string => {
    digestIndex++;
    nextDigest = digest.seq + 1;
    return digestLine(digest.text, digest.signature);
  };

  let nextEvent = 1;
  while (nextEvent <= lastSeq) {
    const events = await store.readEvents(nextEvent, pageSize, lastSeq);
    if (events.length === 0) break;
    for (const event of events) {
      yield eventLine(event.seq, event.hash, event.text);
      for (let digest = await peekDigest(); digest && digest.lastSeq <= event.seq; digest = await peekDigest()) {
        yield takeDigest(digest);
      }
    }
    nextEvent = events[events.length - 1].seq + 1;
  }
  // Digests sealing events that are not there (a truncated trail): written, so verify sees them.
  for (let digest = await peekDigest(); digest; digest = await peekDigest()) yield takeDigest(digest);
}
