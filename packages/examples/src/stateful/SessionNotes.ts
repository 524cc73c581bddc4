import type { Resource } from '@modelcontextprotocol/sdk/types.js';

/** Names a note may have: they become the host part of `note://<name>`. */
export const NOTE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Most notes one session may hold. */
export const MAX_NOTES_PER_SESSION = 100;

/** One note of a session. */
export interface Note {
  name: string;
  text: string;
  /** 1 when created, +1 on every update. */
  version: number;
  updatedAt: string;
}

/** What {@link SessionNotes.put} did. */
export type NotePut = { ok: true; uri: string; created: boolean; version: number } | { ok: false; reason: string };

/** `note://<name>`. */
export function noteUri(name: string): string {
  return `note://${name}`;
}

/** The note name in a `note://<name>` URI, or undefined for any other URI. */
export function noteName(uri: string): string | undefined {
  const match = /^note:\/\/([^/?#]+)$/.exec(uri);
  return match && NOTE_NAME_PATTERN.test(match[1]!) ? match[1] : undefined;
}

/** The notes of one MCP session and the note URIs that session subscribed to. */
export class SessionNotes {
  private readonly notes = new Map<string, Note>();
  private readonly subscriptions = new Set<string>();

  /** Creates or replaces a note. */
  put(name: string, text: string): NotePut {
    const existing = this.notes.get(name);
    if (!existing && this.notes.size >= MAX_NOTES_PER_SESSION) return { ok: false, reason: `this session already holds ${MAX_NOTES_PER_SESSION} notes` };
    const version = (existing?.version ?? 0) + 1;
    this.notes.set(name, { name, text, version, updatedAt: new Date().toISOString() });
    return { ok: true, uri: noteUri(name), created: !existing, version };
  }

  get(name: string): Note | undefined {
    return this.notes.get(name);
  }

  /** The notes as `resources/list` entries. */
  list(): Resource[] {
    return [...this.notes.values()].map((n) => ({
      uri: noteUri(n.name),
      name: n.name,
      title: `Note ${n.name}`,
      mimeType: 'text/plain',
      description: `A note of this session (version ${n.version})`,
    }));
  }

  subscribe(uri: string): void {
    this.subscriptions.add(uri);
  }

  unsubscribe(uri: string): void {
    this.subscriptions.delete(uri);
  }

  isSubscribed(uri: string): boolean {
    return this.subscriptions.has(uri);
  }

  /** The subscribed note URIs, in subscription order. */
  subscribed(): string[] {
    return [...this.subscriptions];
  }
}
