import * as vscode from 'vscode';
import { diffTitle } from './format';

export const DIFF_SCHEME = 'pas-diff';

/** `pas.diffContents` result. */
export interface DiffContents {
  task_id: string;
  files: { path: string; uri: string; base: string | null; proposed: string | null }[];
}

/** Serves the base and proposed text of a task's files to VS Code's native diff editor. */
export class DiffProvider implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }

  /** Open one diff editor per file of the task. */
  async show(contents: DiffContents): Promise<void> {
    if (contents.files.length === 0) {
      void vscode.window.showInformationMessage(`PAS: task ${contents.task_id} changes no file.`);
      return;
    }
    for (const file of contents.files) {
      const left = this.put(contents.task_id, file.path, 'base', file.base ?? '');
      const right = this.put(contents.task_id, file.path, 'proposed', file.proposed ?? '');
      await vscode.commands.executeCommand('vscode.diff', left, right, diffTitle(contents.task_id, file.path), {
        preview: false,
      });
    }
  }

  // The file's own path in the URI keeps its language (syntax colours) in the diff editor.
  private put(task: string, path: string, side: string, text: string): vscode.Uri {
    const uri = vscode.Uri.from({
      scheme: DIFF_SCHEME,
      path: '/' + path.replace(/^\/+/, ''),
      query: `task=${encodeURIComponent(task)}&side=${side}`,
    });
    this.texts.set(uri.toString(), text);
    this.changed.fire(uri);
    return uri;
  }

  dispose(): void {
    this.changed.dispose();
    this.texts.clear();
  }
}
