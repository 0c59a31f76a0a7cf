/**
 * Reading admin API inputs the way AWS's JSON front end reads a request: a member of the wrong
 * JSON type is a SerializationException at once; constraint violations (required, length,
 * pattern, range, enum) are collected and raised together as one ValidationException in AWS's
 * `N validation error(s) detected: ...` form; members nobody asks for are ignored; JSON null is
 * absent. Paths are IAM's camelCase member names. Values of `secret` members (policy documents,
 * tag values, encryption context) are never echoed.
 */
import { KmsError, validationError } from '../errors.ts';

export interface StringRules {
  readonly required?: boolean;
  readonly min?: number;
  readonly max?: number;
  readonly pattern?: RegExp;
  /** The pattern as AWS prints it in the violation. */
  readonly patternText?: string;
  readonly enumValues?: readonly string[];
  /** Never echo the value (documents, tag values). */
  readonly secret?: boolean;
}

// With the u flag a surrogate pair is one code point, so this matches unpaired surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

const pathOf = (member: string): string => member.charAt(0).toLowerCase() + member.slice(1);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const wrongType = (expected: string, path: string) =>
  new KmsError('SerializationException', `Expected ${expected} at '${path}'`);

/** Code points, as Smithy's length trait counts. */
function codePoints(text: string): number {
  if (!/[\uD800-\uDFFF]/.test(text)) return text.length;
  let count = 0;
  for (const _codePoint of text) count++;
  return count;
}

export class AdminInput {
  private readonly violations: string[] = [];

  private constructor(private readonly body: Record<string, unknown>) {}

  static of(input: unknown): AdminInput {
    if (input === undefined || input === null) return new AdminInput({});
    if (!isObject(input)) throw new KmsError('SerializationException', 'The request body must be a JSON object');
    return new AdminInput(input);
  }

  /** Own members only: a member named like an Object.prototype property is just absent. */
  private raw(member: string): unknown {
    const value = Object.hasOwn(this.body, member) ? this.body[member] : undefined;
    return value === null ? undefined : value;
  }

  string(member: string, rules: StringRules & { required: true }): string;
  string(member: string, rules?: StringRules): string | undefined;
  string(member: string, rules: StringRules = {}): string | undefined {
    const path = pathOf(member);
    const value = this.raw(member);
    if (value === undefined) {
      if (rules.required) this.violations.push(`Value null at '${path}' failed to satisfy constraint: Member must not be null`);
      return undefined;
    }
    this.checkString(value, path, rules);
    return value as string;
  }

  private checkString(value: unknown, path: string, rules: StringRules): asserts value is string {
    if (typeof value !== 'string') throw wrongType('a string', path);
    if (LONE_SURROGATE.test(value)) throw new KmsError('SerializationException', `String at '${path}' is not well-formed Unicode`);
    const length = codePoints(value);
    if (rules.min !== undefined && length < rules.min) {
      this.violate(value, path, rules, `have length greater than or equal to ${rules.min}`);
    }
    if (rules.max !== undefined && length > rules.max) {
      this.violate(value, path, rules, `have length less than or equal to ${rules.max}`);
    }
    if (rules.pattern && !rules.pattern.test(value)) {
      this.violate(value, path, rules, `satisfy regular expression pattern: ${rules.patternText ?? rules.pattern.source}`);
    }
    if (rules.enumValues && !rules.enumValues.includes(value)) {
      this.violate(value, path, rules, `satisfy enum value set: [${rules.enumValues.join(', ')}]`);
    }
  }

  integer(member: string, rules: { min?: number; max?: number } = {}): number | undefined {
    const path = pathOf(member);
    const value = this.raw(member);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType('an integer', path);
    if (rules.min !== undefined && value < rules.min) {
      this.violate(value, path, {}, `have value greater than or equal to ${rules.min}`);
    }
    if (rules.max !== undefined && value > rules.max) {
      this.violate(value, path, {}, `have value less than or equal to ${rules.max}`);
    }
    return value;
  }

  /** A list of strings; `member` rules apply to each element. */
  stringList(
    member: string,
    rules: { required?: boolean; min?: number; max?: number; member?: StringRules } = {},
  ): string[] | undefined {
    const path = pathOf(member);
    const list = this.list(member, path, rules);
    return list?.map((element, index) => {
      this.checkString(element, `${path}.${index + 1}.member`, rules.member ?? {});
      return element;
    });
  }

  /** A list of structures, each read by `read` with its own AdminInput. */
  structureList<T>(
    member: string,
    rules: { required?: boolean; min?: number; max?: number },
    read: (element: AdminInput, path: string) => T,
  ): T[] | undefined {
    const path = pathOf(member);
    const list = this.list(member, path, rules);
    return list?.map((element, index) => {
      const elementPath = `${path}.${index + 1}.member`;
      if (!isObject(element)) throw wrongType('a structure', elementPath);
      const reader = new AdminInput(element);
      const value = read(reader, elementPath);
      // Element violations carry the element's path.
      for (const violation of reader.violations) this.violations.push(violation.replace(/ at '/, ` at '${elementPath}.`));
      return value;
    });
  }

  /** A string-to-string map whose keys and values are never echoed (encryption context). */
  secretStringMap(member: string): Record<string, string> | undefined {
    const path = pathOf(member);
    const value = this.raw(member);
    if (value === undefined) return undefined;
    if (!isObject(value)) throw wrongType('a map', path);
    const map: Record<string, string> = Object.create(null);
    let index = 0;
    for (const [key, entry] of Object.entries(value)) {
      index++;
      if (typeof entry !== 'string') throw wrongType('a string', `${path}.entry.${index}.value`);
      if (LONE_SURROGATE.test(key) || LONE_SURROGATE.test(entry)) {
        throw new KmsError('SerializationException', `String at '${path}.entry.${index}' is not well-formed Unicode`);
      }
      map[key] = entry;
    }
    return { ...map };
  }

  private list(member: string, path: string, rules: { required?: boolean; min?: number; max?: number }): unknown[] | undefined {
    const value = this.raw(member);
    if (value === undefined) {
      if (rules.required) this.violations.push(`Value null at '${path}' failed to satisfy constraint: Member must not be null`);
      return undefined;
    }
    if (!Array.isArray(value)) throw wrongType('a list', path);
    const elements = value.filter((element) => element !== null && element !== undefined);
    if (rules.min !== undefined && elements.length < rules.min) {
      this.violations.push(`Value at '${path}' failed to satisfy constraint: Member must have length greater than or equal to ${rules.min}`);
    }
    if (rules.max !== undefined && elements.length > rules.max) {
      this.violations.push(`Value at '${path}' failed to satisfy constraint: Member must have length less than or equal to ${rules.max}`);
    }
    return elements;
  }

  private violate(value: unknown, path: string, rules: StringRules, rule: string): void {
    const shown = rules.secret ? '' : ` '${String(value)}'`;
    this.violations.push(`Value${shown} at '${path}' failed to satisfy constraint: Member must ${rule}`);
  }

  /** Raises every violation found so far as one ValidationException. */
  check(): void {
    if (this.violations.length > 0) throw validationError(this.violations);
  }
}
