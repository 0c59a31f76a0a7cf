/** Java's `\s`: ASCII whitespace only (JS's `\s` also matches Unicode spaces). */
const JAVA_SPACE = ' \\t\\n\\x0B\\f\\r';
/** Escapes whose meaning is the same in Java and in a JS `u` regex (`s`/`S` are translated). */
const PORTABLE_ESCAPES = new Set(['d', 'D', 'w', 'W', 's', 'S', 't', 'n', 'r', 'f', 'x', 'u', 'b', 'B']);

/**
 * Compiles a model pattern (Java syntax) to an equivalent JS RegExp that must match the whole
 * value, as the validator AWS runs does (`Matcher.matches`). Throws on Java syntax this
 * translation does not cover, so a future model cannot silently change meaning.
 */
export function compileModelPattern(javaPattern: string): RegExp {
  let source = '';
  let inClass = false;
  for (let index = 0; index < javaPattern.length; index++) {
    const char = javaPattern[index];
    if (char === '\\') {
      const escaped = javaPattern[index + 1] ?? '';
      index++;
      if (/[A-Za-z0-9]/.test(escaped) && !PORTABLE_ESCAPES.has(escaped)) {
        throw new Error(`unsupported Java regex escape \\${escaped} in ${javaPattern}`);
      }
      if (escaped === 's') source += inClass ? JAVA_SPACE : `[${JAVA_SPACE}]`;
      else if (escaped === 'S' && !inClass) source += `[^${JAVA_SPACE}]`;
      else if (escaped === 'S') throw new Error(`unsupported \\S in a class in ${javaPattern}`);
      else source += `\\${escaped}`;
      continue;
    }
    if (char === '[') {
      // Java allows nested classes and && intersections; JS (without the v flag) does not.
      if (inClass) throw new Error(`unsupported nested character class in ${javaPattern}`);
      inClass = true;
    } else if (char === ']' && inClass) {
      inClass = false;
    } else if (char === '&' && inClass && javaPattern[index + 1] === '&') {
      throw new Error(`unsupported class intersection in ${javaPattern}`);
    }
    source += char;
  }
  return new RegExp(`^(?:${source})$`, 'u');
}
