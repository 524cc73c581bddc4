import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_TOOL_NAME_LENGTH, isValidToolName, namespacedName } from '@flotilla/protocol';

test('short names are server_tool', () => {
  assert.equal(namespacedName('echo', 'say'), 'echo_say');
  assert.equal(namespacedName('my-server', 'do.it'), 'my-server_do.it');
});

test('long names are shortened to 64 characters deterministically, with distinct hashes', () => {
  const a = namespacedName('a-very-long-server-name-that-goes-on', 'and_a_tool_name_that_is_also_quite_long_indeed_1');
  const b = namespacedName('a-very-long-server-name-that-goes-on', 'and_a_tool_name_that_is_also_quite_long_indeed_2');
  assert.equal(a.length, MAX_TOOL_NAME_LENGTH);
  assert.equal(b.length, MAX_TOOL_NAME_LENGTH);
  assert.notEqual(a, b);
  assert.equal(a, namespacedName('a-very-long-server-name-that-goes-on', 'and_a_tool_name_that_is_also_quite_long_indeed_1'));
  assert.ok(isValidToolName(a));
});

test('characters outside the MCP tool-name alphabet are replaced, and the result cannot collide with a clean name', () => {
  const dirty = namespacedName('srv', 'hello world');
  assert.ok(isValidToolName(dirty));
  assert.notEqual(dirty, namespacedName('srv', 'hello_world'));
  assert.match(dirty, /^srv_hello_world_[0-9a-f]{8}$/);
});

test('isValidToolName follows the MCP rules', () => {
  assert.ok(isValidToolName('a'));
  assert.ok(!isValidToolName(''));
  assert.ok(!isValidToolName('has space'));
  assert.ok(!isValidToolName('x'.repeat(65)));
});
