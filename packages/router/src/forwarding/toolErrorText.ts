/** Text of a tool's error result (`isError: true`), for the failed-calls list; undefined for other results. */
export function toolErrorText(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || (result as { isError?: unknown }).isError !== true) return undefined;
  const content = (result as { content?: unknown }).content;
  if (!Array.isArray(content)) return 'tool returned an error result';
  const texts = content.flatMap((c: unknown) =>
    typeof c === 'object' && c !== null && (c as { type?: unknown }).type === 'text' && typeof (c as { text?: unknown }).text === 'string' ? [(c as { text: string }).text] : [],
  );
  return texts.length ? texts.join(' ') : 'tool returned an error result';
}
