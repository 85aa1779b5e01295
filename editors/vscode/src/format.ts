// Pure helpers: no `vscode` import, so node:test can run them without an editor.

/** `pas/status` notification and the counting part of `pas.status`'s result. */
export interface PoolStatus {
  idle: number;
  busy: number;
  failed: number;
  queued: number;
  running: number;
  review: number;
}

/** One entry of `pas.tasks`'s result. */
export interface TaskInfo {
  id: string;
  state: string;
  instruction: string;
  model: string;
  files: string[];
}

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** Argument of the server's `pas.delegate` command. */
export interface DelegateArgs {
  uri: string;
  range?: Range;
  model?: string;
  instruction?: string;
  engine?: string;
}

/** `pas.delegateJob`'s argument: files and folders of one workspace. */
export interface JobArgs {
  uris: string[];
  model?: string;
  instruction?: string;
  split?: 'per-file' | 'plan';
  engine?: string;
}

/** The `pas` settings as the server wants them. */
export interface ServerSettings {
  models?: string[];
  defaultModel?: string;
  socket?: string;
}

export const REVIEW_STATES = ['REVIEW', 'CONFLICT'];
export const CANCELLABLE_STATES = ['QUEUED', 'RUNNING'];

/** Status bar text for a pool status. */
export function statusText(s: PoolStatus): string {
  return `$(server-process) PAS ${s.idle} idle · ${s.busy} busy · ${s.failed} failed`;
}

/** Status bar tooltip for a pool status. */
export function statusTooltip(s: PoolStatus): string {
  return `PAS: ${s.queued} queued · ${s.running} running · ${s.review} in review (click for details)`;
}

// The server documents `# pas:`, `// pas:` and `-- pas:` comments.
const PAS_COMMENT = /(?:#|\/\/|--)\s*pas:\s*(.*\S)/i;

/** The instruction of the first `pas: ...` comment in text, if any. */
export function extractInstruction(text: string): string | undefined {
  for (const line of text.split(/\r?\n/)) {
    const m = PAS_COMMENT.exec(line);
    if (m) {
      return m[1];
    }
  }
  return undefined;
}

/** Model choices for the quick pick: the default first, then the others, no repeats. */
export function modelChoices(models: readonly string[], defaultModel?: string): string[] {
  const all = defaultModel ? [defaultModel, ...models] : [...models];
  return all.filter((m, i) => m.trim() !== '' && all.indexOf(m) === i);
}

/** `pas.models`'s result: the models the server offers (the daemon's `models.choices` when `pas.models` is empty). */
export interface ModelOffer {
  models: string[];
  default: string | null;
  source?: 'settings' | 'daemon' | 'config';
  engines?: string[]; // installed where the daemon runs, native first
}

/** Whether the user set any model in `pas.models` (blank entries do not count). */
export function hasModels(configured: readonly string[] | undefined): boolean {
  return (configured ?? []).some((m) => m.trim() !== '');
}

/**
 * The models to pick from: the user's `pas.models`; when that is empty, what the server offers
 * (the daemon's choices). The user's `pas.defaultModel`, else the server's default, comes first.
 */
export function pickableModels(configured: readonly string[], defaultModel?: string, offered?: ModelOffer): string[] {
  if (hasModels(configured) || !offered) {
    return modelChoices(configured, defaultModel);
  }
  return modelChoices(offered.models, defaultModel?.trim() || offered.default || undefined);
}

/**
 * The engines to pick from: those the server says are installed, the `pas.engine` setting first.
 * Only native (or nothing known): no pick to offer, `pas.engine` (if set) is sent as it is.
 */
export function engineChoices(offered: readonly string[] | undefined, configured?: string): string[] {
  const installed = (offered ?? []).filter((e) => e.trim() !== '');
  const first = configured?.trim();
  if (first && installed.includes(first)) {
    return [first, ...installed.filter((e) => e !== first)];
  }
  return installed;
}

/** The `pas.delegate` argument; empty optional values are left out so the server's defaults apply. */
export function delegateArgs(uri: string, range?: Range, model?: string, instruction?: string,
  engine?: string): DelegateArgs {
  const args: DelegateArgs = { uri };
  if (engine?.trim()) {
    args.engine = engine.trim();
  }
  if (range && !isEmptyRange(range)) {
    args.range = range;
  }
  if (model) {
    args.model = model;
  }
  if (instruction && instruction.trim()) {
    args.instruction = instruction.trim();
  }
  return args;
}

/** What the explorer passes a context-menu command: the clicked item, then the whole selection. */
export function jobUris(clicked: string | undefined, selected: string[] | undefined): string[] {
  const all = selected && selected.length > 0 ? selected : clicked ? [clicked] : [];
  return [...new Set(all)];
}

function isEmptyRange(r: Range): boolean {
  return r.start.line === r.end.line && r.start.character === r.end.character;
}

/**
 * Settings for `initializationOptions` and `workspace/configuration`: blanks are dropped so the
 * server falls back to the daemon's config instead of reporting them as invalid.
 */
export function serverSettings(raw: Record<string, unknown> | null | undefined): ServerSettings {
  const out: ServerSettings = {};
  if (!raw) {
    return out;
  }
  const models = raw['models'];
  if (Array.isArray(models) && models.length > 0) {
    out.models = models.filter((m): m is string => typeof m === 'string' && m.trim() !== '');
  }
  for (const key of ['defaultModel', 'socket'] as const) {
    const v = raw[key];
    if (typeof v === 'string' && v.trim() !== '') {
      out[key] = v.trim();
    }
  }
  return out;
}

/** Split `pas.serverPath` into a command and its arguments (double or single quotes group). */
export function splitCommand(line: string): { command: string; args: string[] } {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) {
    words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]));
  }
  const [command = '', ...args] = words;
  return { command, args };
}

/** Whether a task touches the file at workspace-relative path `rel`. */
export function touches(task: TaskInfo, rel: string | undefined): boolean {
  if (!rel) {
    return false;
  }
  const norm = (p: string) => p.replace(/\\/g, '/').replace(/^\.\//, '');
  const r = norm(rel);
  return task.files.some((f) => {
    const n = norm(f);
    return n === r || n.endsWith('/' + r) || r.endsWith('/' + n);
  });
}

/** Tasks touching the active file first, otherwise in the server's order. */
export function orderTasks(tasks: readonly TaskInfo[], activeRel?: string): TaskInfo[] {
  const hit = tasks.filter((t) => touches(t, activeRel));
  return [...hit, ...tasks.filter((t) => !hit.includes(t))];
}

/** Quick pick item for a task. */
export function taskPickItem(task: TaskInfo, activeRel?: string): { label: string; description: string; detail: string } {
  const here = touches(task, activeRel) ? ' · this file' : '';
  return {
    label: `${task.id}: ${oneLine(task.instruction, 60)}`,
    description: `${task.state} · ${task.model}${here}`,
    detail: task.files.join(', '),
  };
}

function oneLine(text: string, max: number): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/** Result of `pas.approve`. */
export interface ApproveResult {
  task_id: string;
  state: string;
  applied: number[];
  conflicts: { hunk_id: number; path: string; reason: string }[];
}

/** The message for an approve result and whether it is a warning. */
export function approveMessage(r: ApproveResult): { text: string; warning: boolean } {
  const applied = `applied ${r.applied.length} hunk${r.applied.length === 1 ? '' : 's'}`;
  if (r.conflicts.length === 0) {
    return { text: `PAS: task ${r.task_id} approved, ${applied}.`, warning: false };
  }
  const why = r.conflicts.map((c) => `${c.path} hunk ${c.hunk_id}: ${c.reason}`).join('; ');
  return {
    text: `PAS: task ${r.task_id} ${applied}, ${r.conflicts.length} in conflict (${why}).`,
    warning: true,
  };
}

/** Title of the diff editor for one file of a task. */
export function diffTitle(taskId: string, path: string): string {
  return `PAS ${taskId}: ${path}`;
}

/** The server's `pas/taskNotice`: a task this window submitted FAILED or is in review flagged. */
export interface TaskNotice {
  task: string;
  state: string;
  reason: string | null;
  warnings: string[];
  level: 'error' | 'warning';
  message: string;
}

/** Buttons offered with a task notice: its diff when it has one to show, and rejecting a flagged review. */
export function noticeActions(n: TaskNotice): string[] {
  if (REVIEW_STATES.includes(n.state)) {
    return ['Show diff', 'Reject'];
  }
  return n.reason === 'check_failed' ? ['Show diff'] : [];
}
