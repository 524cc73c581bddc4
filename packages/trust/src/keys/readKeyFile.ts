import { readFileSync } from 'node:fs';
import { NKeyPublicSchema } from '@flotilla/protocol';
import { KeyFormatError } from './nkeyMaterial.js';

const SEED_LINE = /^S[A-Z2-7]{57}$/;

/**
 * Reads an NKey seed from a file: a seed file (`nk -gen user > node.nk`), or a NATS `.creds` file (the seed
 * between its `NKEY SEED` markers). Errors name the file, never its content.
 */
export function readSeedFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeyFormatError(`cannot read seed file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const seed = text.split(/\r?\n/).map((l) => l.trim()).find((l) => SEED_LINE.test(l));
  if (!seed) throw new KeyFormatError(`${path} holds no NKey seed (a line of 58 base32 characters starting with "S")`);
  return seed;
}

/**
 * Parses a list of public keys: comma, space or newline separated; `#` starts a comment. Throws naming the
 * first entry that is not an NKey public key.
 */
export function parsePublicKeys(text: string): string[] {
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, ''))
    .join(' ')
    .split(/[\s,]+/)
    .filter((k) => k.length > 0);
  for (const k of keys) if (!NKeyPublicSchema.safeParse(k).success) throw new KeyFormatError(`"${k.slice(0, 60)}" is not an NKey public key`);
  return [...new Set(keys)];
}

/** Reads a file of public keys (see {@link parsePublicKeys}). */
export function readPublicKeysFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeyFormatError(`cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parsePublicKeys(text);
}
