import * as vscode from 'vscode';
import { PasClient } from './client';
import { DIFF_SCHEME, DiffContents, DiffProvider } from './diff';
import {
  ApproveResult,
  CANCELLABLE_STATES,
  DelegateArgs,
  JobArgs,
  ModelOffer,
  PoolStatus,
  REVIEW_STATES,
  TaskInfo,
  approveMessage,
  delegateArgs,
  engineChoices,
  extractInstruction,
  jobUris,
  orderTasks,
  pickableModels,
  taskPickItem,
} from './format';

let pas: PasClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const client = new PasClient();
  pas = client;
  const diffs = new DiffProvider();
  context.subscriptions.push(
    diffs,
    vscode.workspace.registerTextDocumentContentProvider(DIFF_SCHEME, diffs),
    command('pas.delegateSelection', () => delegate(client, true)),
    command('pas.delegateFile', () => delegate(client, false)),
    // Client-side half of the server's delegate code actions (docs/lsp.md): ask, then pas.delegate.
    command('pas.promptDelegate', (arg) => promptDelegate(client, arg)),
    // Client-side half of the folder code action; and the explorer's menu on folders or a multi-selection.
    command('pas.promptDelegateJob', (arg) => promptDelegateJob(client, arg as Partial<JobArgs> | undefined)),
    vscode.commands.registerCommand('pas.delegateFilesAsJob', async (clicked?: vscode.Uri, selected?: vscode.Uri[]) => {
      const c2p = client.client.code2ProtocolConverter;
      const uris = jobUris(clicked && c2p.asUri(clicked), selected?.map((u) => c2p.asUri(u)));
      try {
        await promptDelegateJob(client, { uris });
      } catch (err) {
        void vscode.window.showErrorMessage(`PAS: ${err instanceof Error ? err.message : String(err)}`);
      }
    }),
    command('pas.approveTask', async (arg) => {
      const task = await chooseTask(client, REVIEW_STATES, arg, 'approve');
      if (task) {
        const m = approveMessage(await client.execute<ApproveResult>('pas.approve', { task }));
        void (m.warning ? vscode.window.showWarningMessage(m.text) : vscode.window.showInformationMessage(m.text));
      }
    }),
    command('pas.rejectTask', async (arg) => {
      const task = await chooseTask(client, REVIEW_STATES, arg, 'reject');
      if (task) {
        const r = await client.execute<{ task_id: string; rejected: number[] }>('pas.reject', { task });
        void vscode.window.showInformationMessage(`PAS: task ${r.task_id} rejected.`);
      }
    }),
    // Client-side half of the server's "Revise…" lens and action on a hunk: ask, then pas.revise.
    command('pas.promptRevise', (arg) => promptRevise(client, arg)),
    command('pas.reviseTask', async (arg) => {
      const task = await chooseTask(client, REVIEW_STATES, arg, 'revise');
      if (task) {
        await promptRevise(client, { task });
      }
    }),
    command('pas.showDiffTask', async (arg) => {
      const task = await chooseTask(client, REVIEW_STATES, arg, 'show');
      if (task) {
        await diffs.show(await client.execute<DiffContents>('pas.diffContents', { task }));
      }
    }),
    command('pas.cancelTask', async (arg) => {
      const task = await chooseTask(client, CANCELLABLE_STATES, arg, 'cancel');
      if (task) {
        const r = await client.execute<{ task_id: string; state: string }>('pas.cancel', { task });
        void vscode.window.showInformationMessage(`PAS: task ${r.task_id} is ${r.state}.`);
      }
    }),
    command('pas.showStatus', () => showStatus(client)),
  );
  // Not awaited: a server that is slow or missing must not hold up the window.
  void client.start();
}

export async function deactivate(): Promise<void> {
  await pas?.dispose();
  pas = undefined;
}

/** Register a command whose errors become one error message. */
function command(id: string, run: (arg?: unknown) => Promise<void>): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (arg?: unknown) => {
    try {
      await run(arg);
    } catch (err) {
      void vscode.window.showErrorMessage(`PAS: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

async function delegate(pas: PasClient, selectionOnly: boolean): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showWarningMessage('PAS: open a file to delegate.');
    return;
  }
  const doc = editor.document;
  const sel = editor.selection;
  if (selectionOnly && sel.isEmpty) {
    void vscode.window.showWarningMessage('PAS: select the code to delegate, or use "PAS: Delegate file".');
    return;
  }
  const scope = selectionOnly ? doc.getText(sel) : doc.lineAt(sel.active.line).text;
  const instruction = await vscode.window.showInputBox({
    title: selectionOnly ? 'PAS: Delegate selection' : 'PAS: Delegate file',
    prompt: 'What should the Programmer do?',
    value: extractInstruction(scope) ?? '',
    ignoreFocusOut: true,
  });
  if (!instruction?.trim()) {
    return;
  }
  const c2p = pas.client.code2ProtocolConverter;
  const target = await chooseModel(pas, c2p.asUri(doc.uri));
  if (target === null) {
    return;
  }
  const range = selectionOnly ? c2p.asRange(sel) : undefined;
  const args = delegateArgs(c2p.asUri(doc.uri), range, target.model, instruction, target.engine);
  const r = await pas.execute<{ task_id: string }>('pas.delegate', args);
  vscode.window.setStatusBarMessage(`PAS: task ${r.task_id} queued`, 15000);
}

/** `pas.promptDelegate` {uri, range?, model}: ask for the instruction, then run the server's pas.delegate. */
async function promptDelegate(pas: PasClient, arg: unknown): Promise<void> {
  const given = (arg ?? {}) as Partial<DelegateArgs>;
  if (typeof given.uri !== 'string') {
    throw new Error('pas.promptDelegate needs {uri, range?, model?}');
  }
  const p2c = pas.client.protocol2CodeConverter;
  const doc = await vscode.workspace.openTextDocument(p2c.asUri(given.uri));
  const scope = given.range ? doc.getText(p2c.asRange(given.range)) : '';
  const instruction = await vscode.window.showInputBox({
    title: given.range ? `PAS: Delegate selection to ${given.model ?? 'the default model'}` : 'PAS: Delegate file',
    prompt: 'What should the Programmer do?',
    value: extractInstruction(scope) ?? '',
    ignoreFocusOut: true,
  });
  if (!instruction?.trim()) {
    return;
  }
  const engine = given.engine ?? (await chooseEngine(pas, given.uri, given.model ?? 'the default model'));
  if (engine === null) {
    return;
  }
  const r = await pas.execute<{ task_id: string }>(
    'pas.delegate',
    delegateArgs(given.uri, given.range, given.model, instruction, engine),
  );
  vscode.window.setStatusBarMessage(`PAS: task ${r.task_id} queued`, 15000);
}

/** `pas.promptDelegateJob` {uris, model?}: ask for the instruction (and a model), then run pas.delegateJob. */
async function promptDelegateJob(pas: PasClient, given: Partial<JobArgs> | undefined): Promise<void> {
  const uris = given?.uris;
  if (!Array.isArray(uris) || uris.length === 0) {
    throw new Error('pas.promptDelegateJob needs {uris: [...], model?}');
  }
  const what = uris.length === 1 ? vscode.workspace.asRelativePath(vscode.Uri.parse(uris[0]), false) : `${uris.length} items`;
  const instruction = await vscode.window.showInputBox({
    title: `PAS: Delegate ${what} as a job`,
    prompt: 'What should each Programmer do? (one task per file)',
    ignoreFocusOut: true,
  });
  if (!instruction?.trim()) {
    return;
  }
  const target = given?.model ? { model: given.model, engine: given.engine } : await chooseModel(pas, uris[0]);
  if (target === null) {
    return;
  }
  const { model, engine } = target;
  const args: JobArgs = { uris, instruction: instruction.trim(), ...(model ? { model } : {}), ...(engine ? { engine } : {}) };
  const r = await pas.execute<{ job_id: string; task_ids: string[] }>('pas.delegateJob', args);
  vscode.window.setStatusBarMessage(`PAS: job ${r.job_id} queued (${r.task_ids.length} tasks)`, 15000);
}

/** `pas.promptRevise` {task, hunks?}: ask for the comment, then send the task back with pas.revise. */
async function promptRevise(pas: PasClient, arg: unknown): Promise<void> {
  const given = (arg ?? {}) as { task?: unknown; hunks?: unknown };
  if (typeof given.task !== 'string') {
    throw new Error('pas.promptRevise needs {task, hunks?}');
  }
  const hunks = Array.isArray(given.hunks) ? (given.hunks as number[]) : undefined;
  const about = hunks?.length ? ` (hunk ${hunks.join(', ')})` : '';
  const comment = await vscode.window.showInputBox({
    title: `PAS: Revise task ${given.task}${about}`,
    prompt: 'What should the Programmer change in its proposal?',
    ignoreFocusOut: true,
  });
  if (!comment?.trim()) {
    return;
  }
  const r = await pas.execute<{ task_id: string; revision: number }>(
    'pas.revise',
    { task: given.task, comment: comment.trim(), ...(hunks?.length ? { hunks } : {}) },
  );
  vscode.window.setStatusBarMessage(`PAS: revision ${r.revision} of task ${r.task_id} queued`, 15000);
}

/** What the server offers: the daemon's models and the engines installed; undefined when it cannot say. */
async function offer(pas: PasClient, uri: string): Promise<ModelOffer | undefined> {
  try {
    return await pas.execute<ModelOffer>('pas.models', { uri });
  } catch {
    // The server cannot say (it is down): no pick, and the server's defaults apply when it is back.
    return undefined;
  }
}

/**
 * The model for a new task: picked from `pas.models`, or from the daemon's choices (through the
 * server) when that setting is empty; then its engine (`chooseEngine`). An undefined model: no
 * choice to make, the server's default applies; null: the user dismissed a pick.
 */
async function chooseModel(pas: PasClient, uri: string): Promise<{ model?: string; engine?: string } | null> {
  const config = vscode.workspace.getConfiguration('pas');
  const offered = await offer(pas, uri);
  const models = pickableModels(config.get<string[]>('models', []), config.get<string>('defaultModel'), offered);
  let model: string | undefined = models[0];
  if (models.length > 1) {
    model = await vscode.window.showQuickPick(models, { title: 'PAS: model', placeHolder: 'Model for this task' });
    if (model === undefined) {
      return null;
    }
  }
  const engine = await chooseEngine(pas, uri, model ?? 'the default model', offered);
  return engine === null ? null : { model, engine };
}

/**
 * The engine for a new task: `pas.engine`, or picked when more than native is installed where the
 * daemon runs (`pas.engine` first). Undefined: the model's configured engine; null: dismissed.
 */
async function chooseEngine(pas: PasClient, uri: string, model: string,
  offered?: ModelOffer): Promise<string | undefined | null> {
  const configured = vscode.workspace.getConfiguration('pas').get<string>('engine', '').trim() || undefined;
  const engines = engineChoices((offered ?? (await offer(pas, uri)))?.engines, configured);
  if (engines.length <= 1) {
    return configured;
  }
  const pick = await vscode.window.showQuickPick(engines, {
    title: `PAS: engine for ${model}`,
    placeHolder: 'What runs this task: native (pasd\'s own) or an installed tool',
  });
  return pick ?? null;
}

/** The task a command acts on: its argument, the only candidate, or the user's pick. */
async function chooseTask(pas: PasClient, states: string[], arg: unknown, verb: string): Promise<string | undefined> {
  const given = typeof arg === 'string' ? arg : (arg as { task?: unknown } | undefined)?.task;
  if (typeof given === 'string') {
    return given;
  }
  const { tasks } = await pas.execute<{ tasks: TaskInfo[] }>('pas.tasks', { states });
  if (tasks.length === 0) {
    void vscode.window.showInformationMessage(`PAS: no task is ${states.join(' or ')}.`);
    return undefined;
  }
  if (tasks.length === 1) {
    return tasks[0].id;
  }
  const active = vscode.window.activeTextEditor?.document.uri;
  const rel = active ? vscode.workspace.asRelativePath(active, false) : undefined;
  const items = orderTasks(tasks, rel).map((t) => ({ ...taskPickItem(t, rel), id: t.id }));
  const pick = await vscode.window.showQuickPick(items, { title: `PAS: task to ${verb}`, matchOnDescription: true });
  return pick?.id;
}

async function showStatus(pas: PasClient): Promise<void> {
  type Status = PoolStatus & { programmers: { id: string; state: string; task_id: string | null; model: string }[] };
  const s = await pas.execute<Status>('pas.status', {});
  const items = s.programmers.map((p) => ({
    label: `${p.id}: ${p.state}`,
    description: p.task_id ? `task ${p.task_id} · ${p.model}` : p.model,
  }));
  await vscode.window.showQuickPick(items, {
    title: `PAS: ${s.queued} queued · ${s.running} running · ${s.review} in review · ${s.failed} failed`,
    placeHolder: 'Programmers',
  });
}
