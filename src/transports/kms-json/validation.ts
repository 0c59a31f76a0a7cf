/**
 * Model-driven parsing and validation of AWS JSON 1.1 request bodies.
 *
 * Every operation's input shape is compiled once, at startup, into a tree of plain nodes; a
 * request is then one walk of that tree. The walk does what AWS's front end does, in its order:
 *
 *  1. Deserialise: a member of the wrong JSON type, or a blob that is not standard base64, is a
 *     `SerializationException` raised at once. Blobs become Buffers, timestamps Dates; JSON null
 *     is absent; members the model does not know are dropped.
 *  2. Validate: every violation of the model's constraints (required, length, range, enum,
 *     pattern) is collected across the whole input and raised as one `ValidationException` in
 *     AWS's `N validation error(s) detected: ...; ...` form.
 *
 * Security: a message never carries the value of a `sensitive` shape (plaintext, passwords, XKS
 * secrets), of anything inside one, or of an encryption context, where a caller may put secrets.
 * Those members use AWS's value-less form `Value at '<path>' ...`. SerializationException
 * messages never carry a value at all.
 */
import { KmsError, validationError } from '../../service/errors.ts';
import { inputShapeOf, operationNames, shape as modelShape } from './model.ts';
import type { Shape } from './model.ts';
import { compileModelPattern } from './model-patterns.ts';
import type { StringNode, BlobNode, BooleanNode, ListNode, MapNode, StructureNode, Node } from './validation-nodes.ts';

export type RequestParser = (operation: string, body: unknown) => Record<string, unknown>;

type ParseInput = (body: unknown) => Record<string, unknown>;

/**
 * Shapes whose whole subtree is treated as sensitive although the model does not mark them:
 * encryption-context keys and values are caller data that AWS never promises to keep private in
 * errors, but our catalogue does (STYLE.md: no context values in any message).
 */
const SENSITIVE_BY_POLICY: ReadonlySet<string> = new Set(['EncryptionContextType']);

// With the u flag a surrogate pair is one code point, so this matches unpaired surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Standard base64 (RFC 4648 §4), padded; length is checked separately. A simple class keeps
 * V8's backtracking stack flat on multi-megabyte bodies. */
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

function isStandardBase64(text: string): boolean {
  return text.length % 4 === 0 && BASE64_CHARS.test(text);
}

function camelCase(memberName: string): string {
  return memberName.charAt(0).toLowerCase() + memberName.slice(1);
}

class NodeCompiler {
  private readonly cache = new Map<string, Node>();

  compile(shapeName: string, insideSensitive: boolean): Node {
    const definition: Shape = modelShape(shapeName);
    const sensitive =
      insideSensitive || definition.sensitive === true || SENSITIVE_BY_POLICY.has(shapeName);
    const cacheKey = `${shapeName}|${sensitive}`;
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) return cached;
    const echo = !sensitive;

    switch (definition.type) {
      case 'string': {
        const enumValues = definition.enum;
        return this.remember(cacheKey, {
          kind: 'string',
          echo,
          min: definition.min,
          max: definition.max,
          pattern: definition.pattern === undefined ? undefined : compileModelPattern(definition.pattern),
          patternSource: definition.pattern,
          enumValues: enumValues === undefined ? undefined : new Set(enumValues),
          enumDisplay: enumValues === undefined ? undefined : `[${enumValues.join(', ')}]`,
        });
      }
      case 'integer':
      case 'long':
        return this.remember(cacheKey, {
          kind: 'number',
          echo,
          typeName: definition.type,
          lowest: definition.type === 'integer' ? INT32_MIN : Number.MIN_SAFE_INTEGER,
          highest: definition.type === 'integer' ? INT32_MAX : Number.MAX_SAFE_INTEGER,
          min: definition.min,
          max: definition.max,
        });
      case 'blob':
        return this.remember(cacheKey, { kind: 'blob', echo, min: definition.min, max: definition.max });
      case 'boolean':
        return this.remember(cacheKey, { kind: 'boolean' });
      case 'timestamp':
        return this.remember(cacheKey, { kind: 'timestamp' });
      case 'list': {
        // Registered before its children so that a recursive shape terminates.
        const node: ListNode = { kind: 'list', echo, min: definition.min, max: definition.max, member: PLACEHOLDER };
        this.remember(cacheKey, node);
        node.member = this.compile(definition.member.shape, sensitive);
        node.echo = echo && (node.member.kind === 'string' || node.member.kind === 'number') && node.member.echo;
        return node;
      }
      case 'map': {
        const node: MapNode = {
          kind: 'map',
          echo: false,
          min: definition.min,
          max: definition.max,
          key: PLACEHOLDER,
          value: PLACEHOLDER,
        };
        this.remember(cacheKey, node);
        node.key = this.compile(definition.key.shape, sensitive);
        node.value = this.compile(definition.value.shape, sensitive);
        return node;
      }
      case 'structure': {
        const node: StructureNode = { kind: 'structure', echo: false, members: [] };
        this.remember(cacheKey, node);
        const required = new Set(definition.required ?? []);
        for (const [wireName, ref] of Object.entries(definition.members)) {
          node.members.push({
            wireName,
            pathName: camelCase(wireName),
            required: required.has(wireName),
            node: this.compile(ref.shape, sensitive),
          });
        }
        return node;
      }
    }
  }

  private remember<T extends Node>(cacheKey: string, node: T): T {
    this.cache.set(cacheKey, node);
    return node;
  }
}

const PLACEHOLDER: BooleanNode = { kind: 'boolean' };

/**
 * One precompiled parser per operation in the model, keyed by operation name. Build it once at
 * startup; each parser returns the typed input or throws a KmsError.
 */
export function compileRequestParsers(): Map<string, ParseInput> {
  const compiler = new NodeCompiler();
  const parsers = new Map<string, ParseInput>();
  for (const operation of operationNames()) {
    const inputShape = inputShapeOf(operation);
    const root: Node =
      inputShape === undefined
        ? { kind: 'structure', echo: false, members: [] }
        : compiler.compile(inputShape, false);
    if (root.kind !== 'structure') throw new Error(`input of ${operation} is not a structure`);
    parsers.set(operation, (body) => parseInput(root, body));
  }
  return parsers;
}

/** A parser for any operation; an operation the model lacks is `UnknownOperationException`. */
export function createRequestParser(parsers = compileRequestParsers()): RequestParser {
  return (operation, body) => {
    const parse = parsers.get(operation);
    if (parse === undefined) throw new KmsError('UnknownOperationException', '');
    return parse(body);
  };
}

function parseInput(root: StructureNode, body: unknown): Record<string, unknown> {
  if (!isJsonObject(body)) {
    throw new KmsError('SerializationException', 'The request body must be a JSON object');
  }
  const violations: string[] = [];
  const input = parseStructure(root, body, '', violations);
  if (violations.length > 0) throw validationError(violations);
  return input;
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseStructure(
  node: StructureNode,
  value: Record<string, unknown>,
  path: string,
  violations: string[],
): Record<string, unknown> {
  const parsed: Record<string, unknown> = {};
  for (const member of node.members) {
    // Direct indexing is safe: model member names are PascalCase and so never collide with
    // Object.prototype's properties; unknown members are simply never read.
    const raw = value[member.wireName];
    const memberPath = path === '' ? member.pathName : `${path}.${member.pathName}`;
    if (raw === undefined || raw === null) {
      if (member.required) {
        violations.push(`Value null at '${memberPath}' failed to satisfy constraint: Member must not be null`);
      }
      continue;
    }
    parsed[member.wireName] = parseValue(member.node, raw, memberPath, violations);
  }
  return parsed;
}

function parseValue(node: Node, value: unknown, path: string, violations: string[]): unknown {
  switch (node.kind) {
    case 'string':
      if (typeof value !== 'string') throw wrongType('a string', path);
      // JSON's \u escapes can carry a lone surrogate, which has no UTF-8 form: SQLite would store
      // U+FFFD and give back something else than was sent, and two contexts could alias.
      if (LONE_SURROGATE.test(value)) {
        throw new KmsError('SerializationException', `String at '${path}' is not well-formed Unicode`);
      }
      checkLength(node, value, stringLength(value), path, violations);
      if (node.pattern !== undefined && !node.pattern.test(value)) {
        violations.push(violation(node, value, path, `satisfy regular expression pattern: ${node.patternSource}`));
      }
      if (node.enumValues !== undefined && !node.enumValues.has(value)) {
        violations.push(violation(node, value, path, `satisfy enum value set: ${node.enumDisplay}`));
      }
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(`an ${node.typeName}`, path);
      if (value < node.lowest || value > node.highest) {
        throw new KmsError('SerializationException', `Number at '${path}' is out of range for ${node.typeName}`);
      }
      if (node.min !== undefined && value < node.min) {
        violations.push(violation(node, value, path, `have value greater than or equal to ${node.min}`));
      }
      if (node.max !== undefined && value > node.max) {
        violations.push(violation(node, value, path, `have value less than or equal to ${node.max}`));
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw wrongType('a boolean', path);
      return value;
    case 'timestamp':
      // awsJson1_1 timestamps are epoch seconds, possibly fractional (Smithy aws-json §timestamps).
      if (typeof value !== 'number') throw wrongType('a timestamp in epoch seconds', path);
      return new Date(Math.round(value * 1000));
    case 'blob': {
      if (typeof value !== 'string') throw wrongType('a base64 string', path);
      // Buffer.from(…, 'base64') skips characters it does not know; AWS rejects them.
      if (!isStandardBase64(value)) throw new KmsError('SerializationException', `Invalid base64 at '${path}'`);
      const bytes = Buffer.from(value, 'base64');
      checkLength(node, bytes, bytes.length, path, violations);
      return bytes;
    }
    case 'list': {
      if (!Array.isArray(value)) throw wrongType('a list', path);
      const parsed: unknown[] = [];
      for (let index = 0; index < value.length; index++) {
        const element: unknown = value[index];
        if (element === null || element === undefined) continue;
        parsed.push(parseValue(node.member, element, `${path}.${index + 1}.member`, violations));
      }
      checkLength(node, parsed, parsed.length, path, violations);
      return parsed;
    }
    case 'map': {
      if (!isJsonObject(value)) throw wrongType('a map', path);
      const parsed: Record<string, unknown> = {};
      let index = 0;
      for (const key of Object.keys(value)) {
        index++;
        const entryValue = value[key];
        if (entryValue === null || entryValue === undefined) continue;
        // Paths name the entry by position, never by key: a key can be caller data too.
        parseValue(node.key, key, `${path}.entry.${index}.key`, violations);
        setOwn(parsed, key, parseValue(node.value, entryValue, `${path}.entry.${index}.value`, violations));
      }
      checkLength(node, parsed, Object.keys(parsed).length, path, violations);
      return parsed;
    }
    case 'structure':
      if (!isJsonObject(value)) throw wrongType('a structure', path);
      return parseStructure(node, value, path, violations);
  }
}

/** `{}` plus `parsed['__proto__'] = v` would set the prototype, silently dropping the entry. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

function checkLength(
  node: StringNode | BlobNode | ListNode | MapNode,
  value: unknown,
  length: number,
  path: string,
  violations: string[],
): void {
  if (node.min !== undefined && length < node.min) {
    violations.push(violation(node, value, path, `have length greater than or equal to ${node.min}`));
  }
  if (node.max !== undefined && length > node.max) {
    violations.push(violation(node, value, path, `have length less than or equal to ${node.max}`));
  }
}

/** Smithy's length trait counts Unicode code points; `.length` counts UTF-16 code units. */
function stringLength(text: string): number {
  if (!/[\uD800-\uDFFF]/.test(text)) return text.length;
  let count = 0;
  for (const _codePoint of text) count++;
  return count;
}

function violation(node: Node & { echo: boolean }, value: unknown, path: string, rule: string): string {
  const shown = node.echo ? ` '${displayValue(value)}'` : '';
  return `Value${shown} at '${path}' failed to satisfy constraint: Member must ${rule}`;
}

/** How AWS's Java front end prints a value: `String.valueOf` of the deserialised object. */
function displayValue(value: unknown): string {
  if (Buffer.isBuffer(value)) {
    // AWS prints the ByteBuffer, never its bytes.
    return `java.nio.HeapByteBuffer[pos=0 lim=${value.length} cap=${value.length}]`;
  }
  if (Array.isArray(value)) return `[${value.map(displayValue).join(', ')}]`;
  return String(value);
}

function wrongType(expected: string, path: string): KmsError {
  return new KmsError('SerializationException', `Expected ${expected} at '${path}'`);
}

export { compileModelPattern };
