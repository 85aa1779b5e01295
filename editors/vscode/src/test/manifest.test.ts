import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// out-test/test/manifest.test.js -> the extension's package.json
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
const settings = manifest.contributes.configuration.properties;

test('a workspace cannot set the command the extension runs or the socket it talks to', () => {
  for (const key of ['pas.serverPath', 'pas.socket']) {
    assert.equal(settings[key].scope, 'machine', key);
  }
});

test('an untrusted workspace cannot set any pas setting that picks a command, a daemon or a model', () => {
  const untrusted = manifest.capabilities.untrustedWorkspaces;
  assert.equal(untrusted.supported, 'limited');
  assert.deepEqual([...untrusted.restrictedConfigurations].sort(),
    ['pas.defaultModel', 'pas.engine', 'pas.models', 'pas.serverPath', 'pas.socket']);
  for (const key of untrusted.restrictedConfigurations) {
    assert.ok(settings[key], `${key} is a contributed setting`);
  }
});
