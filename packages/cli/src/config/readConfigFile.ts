import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { YAMLParseError, parse as parseYaml } from 'yaml';

/** A config file that cannot be read or parsed; the message names the file, and the line when known. */
export class ConfigFileError extends Error {
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`config file ${file}: ${detail}`, options);
    this.name = 'ConfigFileError';
  }
}

/** Largest config file read, bytes: a config is small, and a huge file is a mistake. */
const MAX_BYTES = 4 * 1024 * 1024;

/**
 * Reads a config file as plain data: YAML for `.yaml`/`.yml`, JSON otherwise (`.json`, or no extension).
 * Throws a {@link ConfigFileError} naming the file, and the line and column of a syntax error.
 */
export async function readConfigFile(path: string): Promise<unknown> {
  const file = resolve(path);
  let text: string;
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_BYTES) throw new ConfigFileError(file, `larger than ${MAX_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigFileError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new ConfigFileError(file, e.code === 'ENOENT' ? 'no such file' : e.message, { cause: err });
  }
  const yaml = ['.yaml', '.yml'].includes(extname(file).toLowerCase());
  try {
    const value: unknown = yaml ? parseYaml(text, { prettyErrors: false }) : JSON.parse(text);
    if (value === null || value === undefined) return {};
    return value;
  } catch (err) {
    if (err instanceof YAMLParseError) {
      // prettyErrors would quote the file's text (which may hold a secret): the position is computed here.
      throw new ConfigFileError(file, `not valid YAML (${lineAndColumn(text, err.pos[0])}): ${err.message.split('\n')[0]}`, { cause: err });
    }
    throw new ConfigFileError(file, `not valid JSON: ${jsonErrorWhere(text, err)}`, { cause: err });
  }
}

/**
 * A JSON.parse error with the line and column of its position, when Node names one. Node quotes a piece of
 * the text in some messages; that piece is cut (a config file may hold a secret).
 */
function jsonErrorWhere(text: string, err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).replace(/, ".*" is not valid JSON$/s, '');
  const m = /position (\d+)/.exec(message);
  if (!m) return message;
  return `${message} (${lineAndColumn(text, Number(m[1]))})`;
}

/** `line L, column C` of a character offset (both from 1). */
function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  return `line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}`;
}
