/** A config file with invalid content: every problem, each naming the field (`mcpServers.search.url`). */
export class ConfigProblemsError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ReadonlyArray<{ path: string; message: string }>,
  ) {
    const lines = problems.map((p) => `  ${p.path}: ${p.message}`);
    super(`config file ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`);
    this.name = 'ConfigProblemsError';
  }

  /** The problems as `path: message` lines (what the agent logs on a bad reload). */
  get lines(): string[] {
    return this.problems.map((p) => `${p.path}: ${p.message}`);
  }
}
