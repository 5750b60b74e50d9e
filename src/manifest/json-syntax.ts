/**
 * Finds where JSON text is broken. Node 20's JSON.parse says only "is not valid JSON",
 * without a position, and a user editing a manifest needs the line. This scanner runs
 * only after JSON.parse has failed, so it never decides what is valid on its own.
 */

export interface JsonSyntaxProblem {
  offset: number;
  line: number;
  column: number;
  message: string;
}

const MAX_DEPTH = 1000;

class Fail {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

function describeAt(text: string, i: number): string {
  if (i >= text.length) return 'end of file';
  const c = text[i];
  return /\s/.test(c) ? JSON.stringify(c) : `'${c}'`;
}

/** The first syntax problem in `text`, or undefined when it is valid JSON. */
export function findJsonSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const unexpected = (what = ''): never => {
    const c = text[i];
    if (c === '/') throw new Fail(i, 'comments are not allowed in JSON');
    if (c === "'") throw new Fail(i, 'strings must use double quotes in JSON');
    throw new Fail(i, `unexpected ${describeAt(text, i)}${what ? `, expected ${what}` : ''}`);
  };

  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) throw new Fail(i, 'unterminated string');
      const code = text.charCodeAt(i);
      if (code === 0x22) {
        i++;
        return;
      }
      if (code < 0x20) throw new Fail(i, 'control character (such as a newline or tab) inside a string; escape it');
      if (code === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Fail(i, 'invalid \\u escape in string');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else throw new Fail(i, `invalid escape '\\${e ?? ''}' in string`);
      } else i++;
    }
  };

  const number = () => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) throw new Fail(i, 'invalid number');
    i += m[0].length;
    if (i < text.length && /[0-9A-Za-z.]/.test(text[i])) throw new Fail(i, 'invalid number');
  };

  const value = (depth: number): void => {
    if (depth > MAX_DEPTH) throw new Fail(i, 'nested too deeply');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') {
          if (text[i] === '}') throw new Fail(i, 'trailing comma is not allowed in JSON');
          unexpected('a field name in double quotes');
        }
        string();
        ws();
        if (text[i] !== ':') unexpected("':' after the field name");
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        unexpected("',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] === ']') throw new Fail(i, 'trailing comma is not allowed in JSON');
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        unexpected("',' or ']'");
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    unexpected('a value');
  };

  try {
    value(0);
    ws();
    if (i < text.length) throw new Fail(i, `unexpected ${describeAt(text, i)} after the end of the JSON value`);
    return undefined;
  } catch (e) {
    if (!(e instanceof Fail)) throw e;
    const before = text.slice(0, e.offset);
    const line = before.split('\n').length;
    const column = e.offset - (before.lastIndexOf('\n') + 1) + 1;
    return { offset: e.offset, line, column, message: e.message };
  }
}
