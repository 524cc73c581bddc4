/**
 * Fixture server for the official MCP conformance suite (`@modelcontextprotocol/conformance server`).
 *
 * It implements every tool, resource, prompt and utility the suite's server scenarios exercise. The suite
 * calls tools and prompts by exact name (`test_simple_text`, `test_prompt_with_arguments`, ...), while the
 * Flotilla router exposes a hosted server's tool `<tool>` as `<server>_<tool>`. So the default export
 * registers the names *without* the `test_` prefix, and the agent hosts it as server `test`:
 * `simple_text` on server `test` becomes `test_simple_text` at the router, exactly what the suite calls.
 * Hosted directly (no router in front), use {@link createConformanceServer} with `namePrefix: 'test_'`.
 * Resource URIs (`test://...`) are not namespaced by the router, so they are registered verbatim.
 *
 * The default export is a factory: the agent calls it once per MCP session, as the SDK requires one
 * `McpServer` per transport.
 */
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  LoggingLevelSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type ElicitRequestFormParams,
  type LoggingLevel,
  type ServerNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** A 1x1 red PNG, the smallest valid image the image/mixed-content fixtures can return. */
export const TEST_IMAGE_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

/** A minimal (header-only, one silent sample) WAV file for the audio fixture. */
export const TEST_AUDIO_BASE64 = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';

/**
 * Input schema of the `json_schema_2020_12_tool` fixture (scenario `json-schema-2020-12`, SEP-1613). It is
 * raw JSON Schema, not zod, because the scenario checks that `$schema`, `$defs` and `additionalProperties`
 * survive verbatim all the way to the client.
 */
export const JSON_SCHEMA_2020_12_INPUT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: {
    address: {
      type: 'object',
      properties: { street: { type: 'string' }, city: { type: 'string' } },
    },
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
  },
  additionalProperties: false,
} as const;

/** Options of {@link createConformanceServer}. */
export interface ConformanceServerOptions {
  /**
   * Prepended to every tool and prompt name. `''` (default) when hosted as server `test` behind the router,
   * which adds `test_` itself; `'test_'` when the suite talks to the server directly.
   */
  namePrefix?: string;
  /**
   * Also register `json_schema_2020_12_tool` under that exact name (pending scenario `json-schema-2020-12`).
   * Only meaningful for direct hosting: behind the router the name would gain a server prefix, so there the
   * separate module `conformanceJsonSchema` (hosted as server `json`) provides it.
   */
  jsonSchemaTool?: boolean;
}

/** Message severities in increasing order, as the spec (RFC 5424) orders them. */
const LEVELS = LoggingLevelSchema.options;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Validates the `arguments` the suite sends to `test_sampling` / `test_elicitation`. */
const promptArgs = { prompt: z.string().describe('The prompt to send to the LLM') };
const messageArgs = { message: z.string().describe('The message to show the user') };

/** Schema for SEP-1034: one field per primitive type, each with a default. */
const SEP1034_SCHEMA: ElicitRequestFormParams = {
  message: 'Please review and update the form fields with defaults',
  requestedSchema: {
    type: 'object',
    properties: {
      name: { type: 'string', description: 'User name', default: 'John Doe' },
      age: { type: 'integer', description: 'User age', default: 30 },
      score: { type: 'number', description: 'User score', default: 95.5 },
      status: {
        type: 'string',
        description: 'User status',
        enum: ['active', 'inactive', 'pending'],
        default: 'active',
      },
      verified: { type: 'boolean', description: 'Verification status', default: true },
    },
    required: [],
  },
};

/** Schema for SEP-1330: the five enum shapes (untitled/titled single, legacy enumNames, untitled/titled multi). */
const SEP1330_SCHEMA: ElicitRequestFormParams = {
  message: 'Please select options from the enum fields',
  requestedSchema: {
    type: 'object',
    properties: {
      untitledSingle: {
        type: 'string',
        description: 'Select one option',
        enum: ['option1', 'option2', 'option3'],
      },
      titledSingle: {
        type: 'string',
        description: 'Select one option with titles',
        oneOf: [
          { const: 'value1', title: 'First Option' },
          { const: 'value2', title: 'Second Option' },
          { const: 'value3', title: 'Third Option' },
        ],
      },
      legacyEnum: {
        type: 'string',
        description: 'Select one option (legacy)',
        enum: ['opt1', 'opt2', 'opt3'],
        enumNames: ['Option One', 'Option Two', 'Option Three'],
      },
      untitledMulti: {
        type: 'array',
        description: 'Select multiple options',
        minItems: 1,
        items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
      },
      titledMulti: {
        type: 'array',
        description: 'Select multiple options with titles',
        minItems: 1,
        items: {
          anyOf: [
            { const: 'value1', title: 'First Choice' },
            { const: 'value2', title: 'Second Choice' },
            { const: 'value3', title: 'Third Choice' },
          ],
        },
      },
    },
    required: [],
  },
};

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Builds one fixture `McpServer` (one per session). See the module comment for how names map through the
 * router.
 */
export function createConformanceServer(options: ConformanceServerOptions = {}): McpServer {
  const prefix = options.namePrefix ?? '';
  const name = (suffix: string): string => `${prefix}${suffix}`;

  const server = new McpServer(
    { name: 'flotilla-conformance-fixture', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );

  // The SDK filters only `sendLoggingMessage` (sent on the standalone stream) by the level set with
  // logging/setLevel. Our log lines are request-related (they must travel on the tools/call stream, which is
  // what a proxy forwards), so this instance tracks the level itself: one instance serves one session.
  let minLevel: LoggingLevel = 'debug';
  server.server.setRequestHandler(SetLevelRequestSchema, (request) => {
    minLevel = request.params.level;
    return {};
  });
  const logIfEnabled = async (
    send: (n: ServerNotification) => Promise<void>,
    level: LoggingLevel,
    data: string,
  ): Promise<void> => {
    if (LEVELS.indexOf(level) < LEVELS.indexOf(minLevel)) return;
    await send({ method: 'notifications/message', params: { level, logger: 'conformance-fixture', data } });
  };

  // ----- tools -----
  server.registerTool(
    name('simple_text'),
    { description: 'Returns a simple text content block' },
    () => ({ content: [{ type: 'text', text: 'This is a simple text response for testing.' }] }),
  );

  server.registerTool(
    name('image_content'),
    { description: 'Returns an image content block (1x1 PNG)' },
    () => ({ content: [{ type: 'image', data: TEST_IMAGE_BASE64, mimeType: 'image/png' }] }),
  );

  server.registerTool(
    name('audio_content'),
    { description: 'Returns an audio content block (WAV)' },
    () => ({ content: [{ type: 'audio', data: TEST_AUDIO_BASE64, mimeType: 'audio/wav' }] }),
  );

  server.registerTool(
    name('embedded_resource'),
    { description: 'Returns an embedded resource content block' },
    () => ({
      content: [
        {
          type: 'resource',
          resource: {
            uri: 'test://embedded-resource',
            mimeType: 'text/plain',
            text: 'This is an embedded resource content.',
          },
        },
      ],
    }),
  );

  server.registerTool(
    name('multiple_content_types'),
    { description: 'Returns text, image and embedded resource content blocks' },
    () => ({
      content: [
        { type: 'text', text: 'Multiple content types test:' },
        { type: 'image', data: TEST_IMAGE_BASE64, mimeType: 'image/png' },
        {
          type: 'resource',
          resource: {
            uri: 'test://mixed-content-resource',
            mimeType: 'application/json',
            text: JSON.stringify({ test: 'data', value: 123 }),
          },
        },
      ],
    }),
  );

  server.registerTool(
    name('tool_with_logging'),
    { description: 'Emits three info log notifications while it runs', inputSchema: {} },
    async (_args, extra) => {
      // The delays make the notifications arrive during the call, not batched with the result.
      await logIfEnabled(extra.sendNotification, 'info', 'Tool execution started');
      await sleep(50);
      await logIfEnabled(extra.sendNotification, 'info', 'Tool processing data');
      await sleep(50);
      await logIfEnabled(extra.sendNotification, 'info', 'Tool execution completed');
      return { content: [{ type: 'text', text: 'Tool with logging executed successfully' }] };
    },
  );

  server.registerTool(
    name('tool_with_progress'),
    { description: 'Reports progress 0/100, 50/100, 100/100 when given a progress token', inputSchema: {} },
    async (_args, extra) => {
      const token = extra._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (token !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress, total: 100, message: `Completed step ${progress} of 100` },
          });
        }
        if (progress < 100) await sleep(50);
      }
      return { content: [{ type: 'text', text: `Progress tool completed (token: ${String(token ?? 'none')})` }] };
    },
  );

  server.registerTool(
    name('error_handling'),
    { description: 'Always fails, to test tool error reporting' },
    () => {
      // McpServer turns a thrown error into a result with isError: true, which is what the scenario wants.
      throw new Error('This tool intentionally returns an error for testing');
    },
  );

  server.registerTool(
    name('reconnection'),
    {
      description:
        'Closes its SSE stream mid-call (SEP-1699) when the transport supports it, then returns after the client reconnects',
      inputSchema: {},
    },
    async (_args, extra) => {
      // Only present when the hosting transport has an event store; otherwise this is a plain slow call.
      extra.closeSSEStream?.();
      await sleep(100);
      return { content: [{ type: 'text', text: 'Reconnection test completed successfully.' }] };
    },
  );

  server.registerTool(
    name('sampling'),
    { description: 'Asks the client for an LLM completion (sampling/createMessage)', inputSchema: promptArgs },
    async ({ prompt }, extra) => {
      // sendRequest (not server.createMessage) ties the request to this call's stream, so a proxy that
      // forwards per-call traffic can route it to the right client.
      const result = await extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 },
        },
        CreateMessageResultSchema,
      );
      const text = result.content.type === 'text' ? result.content.text : `[${result.content.type}]`;
      return { content: [{ type: 'text', text: `LLM response: ${text}` }] };
    },
  );

  server.registerTool(
    name('elicitation'),
    { description: 'Asks the client for user input (elicitation/create)', inputSchema: messageArgs },
    async ({ message }, extra) => {
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            message,
            requestedSchema: {
              type: 'object',
              properties: {
                username: { type: 'string', description: "User's response" },
                email: { type: 'string', description: "User's email address" },
              },
              required: ['username', 'email'],
            },
          },
        },
        ElicitResultSchema,
      );
      return {
        content: [
          { type: 'text', text: `User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}` },
        ],
      };
    },
  );

  server.registerTool(
    name('elicitation_sep1034_defaults'),
    { description: 'Elicitation whose schema has a default for every primitive type (SEP-1034)', inputSchema: {} },
    async (_args, extra) => {
      const result = await extra.sendRequest({ method: 'elicitation/create', params: SEP1034_SCHEMA }, ElicitResultSchema);
      return {
        content: [
          { type: 'text', text: `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}` },
        ],
      };
    },
  );

  server.registerTool(
    name('elicitation_sep1330_enums'),
    { description: 'Elicitation whose schema has all five enum shapes (SEP-1330)', inputSchema: {} },
    async (_args, extra) => {
      const result = await extra.sendRequest({ method: 'elicitation/create', params: SEP1330_SCHEMA }, ElicitResultSchema);
      return {
        content: [
          { type: 'text', text: `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}` },
        ],
      };
    },
  );

  if (options.jsonSchemaTool) registerJsonSchemaTool(server, 'json_schema_2020_12_tool');

  // ----- resources -----
  server.registerResource(
    'static-text',
    'test://static-text',
    { description: 'A static text resource', mimeType: 'text/plain' },
    (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
    }),
  );

  server.registerResource(
    'static-binary',
    'test://static-binary',
    { description: 'A static binary resource (1x1 PNG)', mimeType: 'image/png' },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: TEST_IMAGE_BASE64 }] }),
  );

  server.registerResource(
    'watched-resource',
    'test://watched-resource',
    { description: 'A resource clients can subscribe to', mimeType: 'text/plain' },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content' }] }),
  );

  server.registerResource(
    'template',
    new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { description: 'A resource template that substitutes {id}', mimeType: 'application/json' },
    (uri, variables) => {
      const id = String(variables.id);
      return {
        contents: [
          {
            uri: uri.href,
            mimeType: 'application/json',
            text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
          },
        ],
      };
    },
  );

  // McpServer has no subscription API; the capability is declared above, so the low-level handlers are allowed.
  // Nothing in the fixture changes a resource, so a subscription is only recorded, never notified.
  const subscriptions = new Set<string>();
  server.server.setRequestHandler(SubscribeRequestSchema, (request) => {
    subscriptions.add(request.params.uri);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });

  // ----- prompts -----
  server.registerPrompt(
    name('simple_prompt'),
    { description: 'A prompt without arguments' },
    () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] }),
  );

  server.registerPrompt(
    name('prompt_with_arguments'),
    {
      description: 'A prompt with two required arguments',
      argsSchema: {
        // completable() also answers completion/complete for this argument (scenario completion-complete).
        arg1: completable(z.string().describe('First test argument'), (value) =>
          ['paris', 'park', 'party', 'test', 'testing'].filter((v) => v.startsWith(value)),
        ),
        arg2: z.string().describe('Second test argument'),
      },
    },
    ({ arg1, arg2 }) => ({
      messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }],
    }),
  );

  server.registerPrompt(
    name('prompt_with_embedded_resource'),
    {
      description: 'A prompt that embeds a resource',
      argsSchema: { resourceUri: z.string().describe('URI of the resource to embed') },
    },
    ({ resourceUri }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'resource',
            resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' },
          },
        },
        { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
      ],
    }),
  );

  server.registerPrompt(
    name('prompt_with_image'),
    { description: 'A prompt with an image' },
    () => ({
      messages: [
        { role: 'user', content: { type: 'image', data: TEST_IMAGE_BASE64, mimeType: 'image/png' } },
        { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
      ],
    }),
  );

  return server;
}

/**
 * Registers the SEP-1613 tool under `toolName`. Its schema must reach clients verbatim, and McpServer always
 * derives `inputSchema` from zod, so the tool is registered without input and its listed schema is replaced
 * by the raw JSON Schema in a wrapping tools/list handler.
 */
export function registerJsonSchemaTool(server: McpServer, toolName: string): void {
  server.registerTool(toolName, { description: 'Tool with JSON Schema 2020-12 features' }, () => ({
    content: [{ type: 'text', text: 'JSON Schema 2020-12 tool called' }],
  }));
  // McpServer installs its tools/list handler on the first registerTool and offers no hook to amend one
  // tool's listing, so wrap the installed handler (an internal field; the shape is checked, not trusted).
  const internals: unknown = Reflect.get(server.server, '_requestHandlers');
  const original = internals instanceof Map ? (internals.get('tools/list') as unknown) : undefined;
  if (!(internals instanceof Map) || typeof original !== 'function') {
    throw new Error('this SDK version has no tools/list handler map to wrap');
  }
  const listTools = original as (request: unknown, extra: unknown) => Promise<unknown>;
  internals.set('tools/list', async (request: unknown, extra: unknown) => {
    const result = ToolsListShape.parse(await listTools(request, extra));
    return {
      ...result,
      tools: result.tools.map((t) => (t.name === toolName ? { ...t, inputSchema: JSON_SCHEMA_2020_12_INPUT_SCHEMA } : t)),
    };
  });
}

/** Just enough of a tools/list result to rewrite one tool; everything else passes through untouched. */
const ToolsListShape = z.looseObject({ tools: z.array(z.looseObject({ name: z.string() })) });

/** Agent entry point: a fresh fixture server per session, names without `test_` (host it as server `test`). */
export default function conformanceServer(): McpServer {
  return createConformanceServer();
}
