/**
 * `--metadata-output FILE|-`: one JSON line per file processed, in the spirit of the
 * aws-encryption-cli's metadata (mode, input, output, and the message header in snake_case).
 * It carries the encryption context — the metadata is the caller's own record of what was done,
 * asked for by name, not a log — and never plaintext or data keys (EDKs are ciphertext).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { MessageHeaderInfo } from '../esdk/index.ts';
import { outputDescriptor, writeFully } from './encrypt-descriptors.ts';
import { STDIO, type Job } from './encrypt-files.ts';
import { hexSuiteId, suiteName, type Mode } from './encrypt-options.ts';
import { writeStdout } from './encrypt-stdout.ts';

export interface MetadataOutput {
  write(record: object): Promise<void>;
  close(): Promise<void>;
}

/**
 * Appends to FILE (0600) unless `overwrite`; `-` (or /dev/stdout) writes to stdout, another
 * descriptor of the process (/dev/stderr, /dev/fd/N) is written as the shell opened it.
 */
export async function openMetadataOutput(destination: string, overwrite: boolean): Promise<MetadataOutput> {
  const descriptor = destination === STDIO ? 1 : await outputDescriptor(destination);
  if (descriptor !== undefined && descriptor !== 1) {
    return { write: (record) => writeFully(descriptor, Buffer.from(`${JSON.stringify(record)}\n`)), close: async () => undefined };
  }
  if (descriptor === 1) {
    return {
      write: (record) => writeStdout(`${JSON.stringify(record)}\n`),
      close: async () => undefined,
    };
  }
  const handle: FileHandle = await open(destination, overwrite ? 'w' : 'a', 0o600);
  return {
    write: async (record) => {
      await handle.appendFile(`${JSON.stringify(record)}\n`);
    },
    close: () => handle.close(),
  };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function keyInfoText(providerId: string, info: Uint8Array): { key_info: string; key_arn?: string } {
  const keyInfo = Buffer.from(info).toString('base64');
  if (providerId !== 'aws-kms') return { key_info: keyInfo };
  try {
    return { key_info: keyInfo, key_arn: strictUtf8.decode(info) };
  } catch {
    return { key_info: keyInfo };
  }
}

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/**
 * The header as aws-encryption-cli writes it (its `json_ready_header`): version "1.0"/"2.0",
 * `type` 128 in version 1, content type as its number (2 framed, 1 non-framed), `header_iv_length`
 * in version 1, the commitment key, and EDKs sorted by provider id and key info with both
 * base64-encoded. Added here: `algorithm_id` and, for aws-kms keys, `key_arn` in clear.
 */
export function headerRecord(header: MessageHeaderInfo): object {
  const v1 = header.version === 1;
  const edks = header.encryptedDataKeys
    .map((edk) => ({ edk, order: Buffer.concat([Buffer.from(edk.providerId, 'utf8'), edk.providerInfo]) }))
    .sort((a, b) => Buffer.compare(a.order, b.order))
    .map(({ edk }) => ({
      key_provider: { provider_id: base64(Buffer.from(edk.providerId, 'utf8')), ...keyInfoText(edk.providerId, edk.providerInfo) },
      encrypted_data_key: base64(edk.ciphertext),
    }));
  return {
    version: `${header.version}.0`,
    type: v1 ? 128 : null,
    algorithm: suiteName(header.suiteId),
    algorithm_id: hexSuiteId(header.suiteId),
    message_id: base64(header.messageId),
    encryption_context: header.encryptionContext,
    encrypted_data_keys: edks,
    content_type: header.contentType === 'framed' ? 2 : 1,
    header_iv_length: v1 ? 12 : null,
    frame_length: header.frameLength,
    commitment_key: header.commitmentKey ? base64(header.commitmentKey) : null,
  };
}

/**
 * One line of --metadata-output: aws-encryption-cli's fields (mode, input, output, header, and on
 * decrypt header_auth), keys sorted at every level as its json.dumps(sort_keys=True) does (but for
 * integer-like keys, which JavaScript objects always put first), plus
 * input_bytes and output_bytes.
 */
export function metadataRecord(mode: Mode, job: Job, result: { header: MessageHeaderInfo; inputBytes: number; outputBytes: number }): object {
  const { header } = result;
  return sortKeys({
    mode,
    input: job.source === STDIO ? '<stdin>' : resolve(job.source),
    output: job.target === STDIO ? '<stdout>' : resolve(job.target),
    input_bytes: result.inputBytes,
    output_bytes: result.outputBytes,
    header: headerRecord(header),
    ...(mode === 'decrypt' ? { header_auth: { iv: base64(header.headerAuth.iv), tag: base64(header.headerAuth.tag) } } : {}),
  }) as object;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  );
}
