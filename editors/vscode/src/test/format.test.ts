import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  TaskInfo,
  approveMessage,
  delegateArgs,
  diffTitle,
  engineChoices,
  extractInstruction,
  hasModels,
  jobUris,
  modelChoices,
  noticeActions,
  orderTasks,
  pickableModels,
  serverSettings,
  splitCommand,
  statusText,
  statusTooltip,
  taskPickItem,
} from '../format';

const pool = { idle: 3, busy: 1, failed: 0, queued: 2, running: 1, review: 4 };

test('status text shows idle, busy and failed Programmers', () => {
  assert.equal(statusText(pool), '$(server-process) PAS 3 idle · 1 busy · 0 failed');
});

test('status tooltip shows queued, running and review counts', () => {
  assert.equal(statusTooltip(pool), 'PAS: 2 queued · 1 running · 4 in review (click for details)');
});

test('instruction comes from the first pas comment in any of the three comment styles', () => {
  assert.equal(extractInstruction('x = 1\n# pas: use a dict here  \ny = 2'), 'use a dict here');
  assert.equal(extractInstruction('  // PAS: rename to total'), 'rename to total');
  assert.equal(extractInstruction('-- pas: add an index\n-- pas: second'), 'add an index');
  assert.equal(extractInstruction('x = 1\r\n#pas:tighten\r\n'), 'tighten');
});

test('no instruction without a pas comment or with an empty one', () => {
  assert.equal(extractInstruction('print("pas: not a comment")'), undefined);
  assert.equal(extractInstruction('# pas:   '), undefined);
  assert.equal(extractInstruction(''), undefined);
});

test('model choices put the default first and drop repeats and blanks', () => {
  assert.deepEqual(modelChoices(['a', 'b', 'c'], 'b'), ['b', 'a', 'c']);
  assert.deepEqual(modelChoices(['a', '', 'a'], ''), ['a']);
  assert.deepEqual(modelChoices([], 'x'), ['x']);
  assert.deepEqual(modelChoices([]), []);
});

test('delegate args leave out what the server should default', () => {
  const range = { start: { line: 1, character: 0 }, end: { line: 3, character: 0 } };
  assert.deepEqual(delegateArgs('file:///w/a.py', range, 'm', ' do it '), {
    uri: 'file:///w/a.py',
    range,
    model: 'm',
    instruction: 'do it',
  });
  const empty = { start: { line: 2, character: 4 }, end: { line: 2, character: 4 } };
  assert.deepEqual(delegateArgs('file:///w/a.py', empty, undefined, '  '), { uri: 'file:///w/a.py' });
});

test('server settings drop blanks and client-only keys', () => {
  assert.deepEqual(serverSettings({ serverPath: 'pas-lsp', models: [], defaultModel: '', socket: '' }), {});
  assert.deepEqual(serverSettings({ models: ['a', 1, ' '], defaultModel: ' a ', socket: '/s' }), {
    models: ['a'],
    defaultModel: 'a',
    socket: '/s',
  });
  assert.deepEqual(serverSettings(null), {});
});

test('server path splits into command and arguments, honouring quotes', () => {
  assert.deepEqual(splitCommand('pas-lsp'), { command: 'pas-lsp', args: [] });
  assert.deepEqual(splitCommand('  /opt/py/bin/python -m pas_lsp '), {
    command: '/opt/py/bin/python',
    args: ['-m', 'pas_lsp'],
  });
  assert.deepEqual(splitCommand('"/My Tools/python" -m \'pas_lsp\' "a \\"b\\""'), {
    command: '/My Tools/python',
    args: ['-m', 'pas_lsp', 'a "b"'],
  });
});

const tasks: TaskInfo[] = [
  { id: 't1', state: 'REVIEW', instruction: 'fix   the\nbug', model: 'm1', files: ['src/a.py'] },
  { id: 't2', state: 'CONFLICT', instruction: 'x'.repeat(80), model: 'm2', files: ['src/b.py', 'c.py'] },
];

test('tasks touching the active file come first', () => {
  assert.deepEqual(orderTasks(tasks, 'src/b.py').map((t) => t.id), ['t2', 't1']);
  assert.deepEqual(orderTasks(tasks, './c.py').map((t) => t.id), ['t2', 't1']);
  assert.deepEqual(orderTasks(tasks, undefined).map((t) => t.id), ['t1', 't2']);
});

test('task pick items show id, instruction, state, model and files', () => {
  assert.deepEqual(taskPickItem(tasks[0], 'src/a.py'), {
    label: 't1: fix the bug',
    description: 'REVIEW · m1 · this file',
    detail: 'src/a.py',
  });
  const long = taskPickItem(tasks[1]);
  assert.equal(long.label.length, 't2: '.length + 60);
  assert.ok(long.label.endsWith('…'));
  assert.equal(long.description, 'CONFLICT · m2');
});

test('approve message warns about conflicts only', () => {
  assert.deepEqual(approveMessage({ task_id: 't1', state: 'APPLIED', applied: [0, 1], conflicts: [] }), {
    text: 'PAS: task t1 approved, applied 2 hunks.',
    warning: false,
  });
  const m = approveMessage({
    task_id: 't2',
    state: 'CONFLICT',
    applied: [0],
    conflicts: [{ hunk_id: 1, path: 'a.py', reason: 'buffer changed' }],
  });
  assert.equal(m.warning, true);
  assert.equal(m.text, 'PAS: task t2 applied 1 hunk, 1 in conflict (a.py hunk 1: buffer changed).');
});

test('diff title names task and path', () => {
  assert.equal(diffTitle('t1', 'src/a.py'), 'PAS t1: src/a.py');
});

test('a job from the explorer takes the whole selection, else the clicked item', () => {
  assert.deepEqual(jobUris('file:///w/a', ['file:///w/a', 'file:///w/b', 'file:///w/a']), ['file:///w/a', 'file:///w/b']);
  assert.deepEqual(jobUris('file:///w/src', undefined), ['file:///w/src']);
  assert.deepEqual(jobUris(undefined, []), []);
});

test('with pas.models empty, the pick offers the daemon\'s choices, its default first', () => {
  const offered = { models: ['openai/a', 'openai/b'], default: 'openai/b', source: 'daemon' as const };
  assert.deepEqual(pickableModels([], '', offered), ['openai/b', 'openai/a']);
  assert.deepEqual(pickableModels(['  '], undefined, offered), ['openai/b', 'openai/a']);
});

test('a set pas.defaultModel comes first among the daemon\'s choices', () => {
  const offered = { models: ['openai/a', 'openai/b'], default: 'openai/a' };
  assert.deepEqual(pickableModels([], 'openai/b', offered), ['openai/b', 'openai/a']);
  assert.deepEqual(pickableModels([], 'openai/c', offered), ['openai/c', 'openai/a', 'openai/b']);
});

test('the user\'s pas.models win over what the server offers', () => {
  const offered = { models: ['openai/a', 'openai/b'], default: 'openai/a' };
  assert.deepEqual(pickableModels(['openai/mine'], undefined, offered), ['openai/mine']);
  assert.deepEqual(pickableModels(['openai/mine'], 'openai/x', offered), ['openai/x', 'openai/mine']);
});

test('without an offer (server down) the settings alone decide', () => {
  assert.deepEqual(pickableModels([], undefined, undefined), []);
  assert.deepEqual(pickableModels([], 'openai/x', undefined), ['openai/x']);
  assert.equal(hasModels(['', ' ']), false);
  assert.equal(hasModels(['openai/a']), true);
});

test('a flagged review offers its diff and reject; a failed check its diff; other failures nothing', () => {
  const notice = { task: 'abc', reason: null, warnings: ['check_failed'], level: 'warning' as const, message: 'm' };
  assert.deepEqual(noticeActions({ ...notice, state: 'REVIEW' }), ['Show diff', 'Reject']);
  assert.deepEqual(noticeActions({ ...notice, state: 'FAILED', reason: 'check_failed', level: 'error' }), ['Show diff']);
  assert.deepEqual(noticeActions({ ...notice, state: 'FAILED', reason: 'no_edits', warnings: [], level: 'error' }), []);
});

test('an engine is offered only when more than native is installed, pas.engine first', () => {
  assert.deepEqual(engineChoices(undefined, 'aider'), []);
  assert.deepEqual(engineChoices(['native'], ''), ['native']);
  assert.deepEqual(engineChoices(['native', 'aider', 'claude'], undefined), ['native', 'aider', 'claude']);
  assert.deepEqual(engineChoices(['native', 'aider', 'claude'], ' claude '), ['claude', 'native', 'aider']);
  assert.deepEqual(engineChoices(['native', 'aider'], 'codex'), ['native', 'aider']); // not installed: not first
});

test('the engine goes into pas.delegate only when one is chosen', () => {
  assert.deepEqual(delegateArgs('file:///w/a.py', undefined, 'm', 'do it', 'aider'), {
    uri: 'file:///w/a.py', model: 'm', instruction: 'do it', engine: 'aider',
  });
  assert.deepEqual(delegateArgs('file:///w/a.py', undefined, undefined, 'x', ' '), { uri: 'file:///w/a.py', instruction: 'x' });
});
