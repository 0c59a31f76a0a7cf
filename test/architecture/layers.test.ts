import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

/**
 * DESIGN.md's layers, top to bottom. A module may import its own layer or any layer below it,
 * never one above. The CLI is the composition root and sits on top.
 */
// esdk is a client library (the Encryption SDK): it sits on crypto alone, and the CLI builds on it.
const LAYERS = ['crypto', 'esdk', 'storage', 'keystores', 'policy', 'service', 'transports', 'cli'] as const;
/** Beyond rank: a transport never touches storage or key material directly. */
const FORBIDDEN: Record<string, string[]> = { transports: ['storage', 'keystores'] };

const srcRoot = resolve(import.meta.dirname, '../../src');

function layerOf(path: string): string | undefined {
  const top = relative(srcRoot, path).split('/')[0];
  return (LAYERS as readonly string[]).includes(top) ? top : undefined;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

export function layerViolations(files: { path: string; text: string }[]): string[] {
  const violations: string[] = [];
  for (const file of files) {
    const from = layerOf(file.path);
    if (!from) {
      violations.push(`${relative(srcRoot, file.path)} is outside every layer folder`);
      continue;
    }
    for (const imported of ts.preProcessFile(file.text, true, true).importedFiles) {
      if (!imported.fileName.startsWith('.')) continue;
      const target = layerOf(resolve(dirname(file.path), imported.fileName));
      if (!target) {
        violations.push(`${relative(srcRoot, file.path)} imports ${imported.fileName}, outside src's layers`);
        continue;
      }
      const upward = LAYERS.indexOf(target as (typeof LAYERS)[number]) > LAYERS.indexOf(from as (typeof LAYERS)[number]);
      if (upward || FORBIDDEN[from]?.includes(target)) {
        violations.push(`${relative(srcRoot, file.path)} (${from}) imports ${imported.fileName} (${target})`);
      }
    }
  }
  return violations;
}

/**
 * The service names its inputs and outputs with the AWS SDK's request/response *types* (see
 * docs/design.md); nothing in src may load the SDK at run time, and the layers below the service
 * may not mention it at all.
 */
/**
 * The KMS client side may load the AWS SDK at run time: the Encryption SDK's KMS keyring calls KMS
 * through a KMSClient (any endpoint, Strongroom or AWS), and the encrypt/decrypt CLI builds one.
 * The server's request path never does.
 */
const SDK_CLIENT_FILES = new Set(['esdk/kms-keyring.ts', 'cli/encrypt-keyring.ts']);

export function sdkImportViolations(files: { path: string; text: string }[]): string[] {
  const violations: string[] = [];
  for (const file of files) {
    if (SDK_CLIENT_FILES.has(relative(srcRoot, file.path))) continue;
    const layer = layerOf(file.path);
    for (const match of file.text.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'(@aws-sdk\/[^']+)'/gms)) {
      const typeOnly = match[1] !== undefined;
      if (!typeOnly || (layer !== 'service' && layer !== 'transports' && layer !== 'cli')) {
        violations.push(`${relative(srcRoot, file.path)} imports ${match[2]}${typeOnly ? ' (types)' : ' at run time'}`);
      }
    }
  }
  return violations;
}

describe('layering', () => {
  it('has every layer folder DESIGN.md names', () => {
    for (const layer of LAYERS) assert.ok(statSync(join(srcRoot, layer)).isDirectory(), `src/${layer} is missing`);
  });

  it('has imports in src pointing down the layers only', () => {
    const files = sourceFiles(srcRoot).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
    assert.ok(files.length > 20, 'the check must see the source tree');
    assert.deepEqual(layerViolations(files), []);
  });

  it('loads no AWS SDK code at run time from src, and keeps its types out of the lower layers', () => {
    const files = sourceFiles(srcRoot).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
    assert.deepEqual(sdkImportViolations(files), []);
    assert.equal(
      sdkImportViolations([
        { path: join(srcRoot, 'service/x.ts'), text: "import { KMSClient } from '@aws-sdk/client-kms';" },
        { path: join(srcRoot, 'storage/x.ts'), text: "import type { KeyMetadata } from '@aws-sdk/client-kms';" },
        { path: join(srcRoot, 'service/y.ts'), text: "import type { KeyMetadata } from '@aws-sdk/client-kms';" },
      ]).length,
      2,
    );
  });

  it('flags an upward import and a transport reaching into storage', () => {
    const violations = layerViolations([
      { path: join(srcRoot, 'crypto/x.ts'), text: "import { y } from '../service/errors.ts';" },
      { path: join(srcRoot, 'transports/kms-json/x.ts'), text: "import { s } from '../../storage/types.ts';" },
      { path: join(srcRoot, 'service/x.ts'), text: "import { c } from '../crypto/aead.ts';" },
    ]);
    assert.equal(violations.length, 2);
    assert.match(violations[0], /crypto\/x\.ts \(crypto\) imports/);
    assert.match(violations[1], /transports\/kms-json\/x\.ts \(transports\) imports/);
  });
});
