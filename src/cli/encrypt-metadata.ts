/**
 * `--metadata-output FILE|-`: one JSON line per file processed, in the spirit of the
 * aws-encryption-cli's metadata (mode, input, output, and the message header in snake_case).
 * It carries the encryption context — the metadata is the caller's own record of what was done,
 * asked for by name, not a log — and never plaintext or data keys (EDKs are ciphertext).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { MessageHeaderInfo } from '../esdk/index.ts';
import { STDIO, type Job } from './encrypt-files.ts';
import { hexSuiteId, suiteName, type Mode } from './encrypt-options.ts';
import { writeStdout } from './encrypt-stdout.ts';

export interface MetadataOutput {
  write(record: object): Promise<void>;
  close(): Promise<void>;
}

/** Appends to FILE (0600) unless `overwrite`; `-` writes to stdout. */
export async function openMetadataOutput(destination: string, overwrite: boolean): Promise<MetadataOutput> {
  if (destination === STDIO) {
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

export function headerRecord(header: MessageHeaderInfo): object {
  return {
    version: header.version,
    algorithm: suiteName(header.suiteId),
    algorithm_id: hexSuiteId(header.suiteId),
    message_id: Buffer.from(header.messageId).toString('base64'),
    encryption_context: header.encryptionContext,
    encrypted_data_keys: header.encryptedDataKeys.map((edk) => ({
      key_provider: { provider_id: edk.providerId, ...keyInfoText(edk.providerId, edk.providerInfo) },
      encrypted_data_key: Buffer.from(edk.ciphertext).toString('base64'),
    })),
    content_type: header.contentType,
    frame_length: header.frameLength,
  };
}

export function metadataRecord(mode: Mode, job: Job, result: { header: MessageHeaderInfo; inputBytes: number; outputBytes: number }): object {
  return {
    mode,
    input: job.source === STDIO ? '<stdin>' : resolve(job.source),
    output: job.target === STDIO ? '<stdout>' : resolve(job.target),
    input_bytes: result.inputBytes,
    output_bytes: result.outputBytes,
    header: headerRecord(result.header),
  };
}
