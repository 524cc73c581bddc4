import type { Command, Option } from 'commander';

/** Where an option's value came from, highest precedence first. */
export type ValueSource = 'flag' | 'env' | 'file' | 'default';

/** Options that steer the command itself and are never read from a file or the environment. */
const CONTROL_OPTIONS = new Set(['config', 'printConfig']);

/** `FLOTILLA_AGENT_MAX_SESSIONS` from `('FLOTILLA_AGENT', 'maxSessions')`. */
export function envName(prefix: string, attribute: string): string {
  return `${prefix}_${attribute.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/**
 * Gives every option of `cmd` an environment variable (`<prefix>_<OPTION>`, or the name in `names`),
 * except control options and those listed in `skip`: read when the flag is absent (through the option's
 * own parser, so a bad value is refused the same way), and shown in `--help`. A boolean option is set by
 * its variable being defined.
 */
export function bindEnv(cmd: Command, prefix: string, names: Readonly<Record<string, string>> = {}, skip: ReadonlySet<string> = new Set()): Command {
  for (const option of cmd.options) {
    const attribute = option.attributeName();
    if (option.envVar || CONTROL_OPTIONS.has(attribute) || skip.has(attribute)) continue;
    option.env(names[attribute] ?? envName(prefix, attribute));
    // Commander listens for an option's variable only when it was known as the option was added.
    cmd.on(`optionEnv:${option.name()}`, (raw: string | undefined) => cmd.setOptionValueWithSource(attribute, envValue(cmd, option, raw), 'env'));
  }
  return cmd;
}

/** An environment variable's value for `option`, parsed like the flag's argument; a bad one stops the command. */
function envValue(cmd: Command, option: Option, raw: string | undefined): unknown {
  if (option.isBoolean()) return !option.negate;
  if (raw === undefined || !option.parseArg) return raw;
  try {
    return option.parseArg(raw, cmd.getOptionValue(option.attributeName()));
  } catch (err) {
    return cmd.error(`error: option '${option.flags}' value '${raw}' from env '${option.envVar ?? '?'}' is invalid. ${err instanceof Error ? err.message : String(err)}`, { exitCode: 1 });
  }
}

/**
 * Sets the options a config file gives, where no flag or environment variable set them already: flags
 * win over the environment, which wins over the file, which wins over defaults.
 */
export function applyFileValues(cmd: Command, values: Readonly<Record<string, unknown>>): void {
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const source = cmd.getOptionValueSource(key);
    if (source === 'cli' || source === 'env') continue;
    cmd.setOptionValueWithSource(key, value, 'config');
  }
}

/** Every option's value and where it came from (control options left out). */
export function optionValues(cmd: Command): Record<string, { value: unknown; source: ValueSource }> {
  const out: Record<string, { value: unknown; source: ValueSource }> = {};
  const values = cmd.opts();
  for (const option of cmd.options) {
    const key = option.attributeName();
    if (CONTROL_OPTIONS.has(key)) continue;
    out[key] = { value: values[key], source: sourceName(cmd.getOptionValueSource(key)) };
  }
  return out;
}

function sourceName(source: string | undefined): ValueSource {
  switch (source) {
    case 'cli':
      return 'flag';
    case 'env':
      return 'env';
    case 'config':
      return 'file';
    default:
      return 'default';
  }
}
