import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { PoolStatus, TaskNotice, noticeActions, serverSettings, splitCommand, statusText, statusTooltip } from './format';

/** The language client plus the status bar item that shows the pool. */
export class PasClient implements vscode.Disposable {
  readonly client: LanguageClient;
  private readonly item: vscode.StatusBarItem;

  constructor() {
    const config = vscode.workspace.getConfiguration('pas');
    const { command, args } = splitCommand(config.get<string>('serverPath', 'pas-lsp'));
    const serverOptions: ServerOptions = { command, args };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      initializationOptions: serverSettings(rawSettings(config)),
      synchronize: { configurationSection: 'pas' },
      middleware: {
        workspace: {
          // Blank settings mean "use the daemon's config", so they are not sent as values.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) {
              return result;
            }
            return result.map((r, i) =>
              params.items[i]?.section === 'pas' ? serverSettings(r as Record<string, unknown>) : r,
            );
          },
        },
      },
    };
    this.client = new LanguageClient('pas', 'PAS', serverOptions, clientOptions);

    this.item = vscode.window.createStatusBarItem('pas.status', vscode.StatusBarAlignment.Left, 10);
    this.item.name = 'PAS';
    this.item.command = 'pas.showStatus';
    this.item.text = 'PAS: starting…';
    this.item.tooltip = `Starting ${command}`;
    this.item.show();

    this.client.onNotification('pas/status', (s: PoolStatus) => this.showStatus(s));
    // Tell the server this window shows task notices itself (with buttons) instead of plain messages.
    this.client.registerFeature({
      fillClientCapabilities(caps) {
        caps.experimental = { ...(caps.experimental ?? {}), pas: { taskNotices: true } };
      },
      initialize() {},
      getState: () => ({ kind: 'static' }),
      clear() {},
    });
    this.client.onNotification('pas/taskNotice', (n: TaskNotice) => void this.showNotice(n));
    this.client.onDidChangeState((e) => {
      if (e.newState === State.Stopped) {
        this.offline('the language server stopped');
      }
    });
  }

  /** Start the server; on failure the status bar says offline instead of throwing. */
  async start(): Promise<void> {
    try {
      await this.client.start();
    } catch (err) {
      this.offline(String(err instanceof Error ? err.message : err));
      return;
    }
    try {
      this.showStatus(await this.execute<PoolStatus>('pas.status', {}));
    } catch {
      // The first `pas/status` notification fills the item in.
    }
  }

  /** Run one of the server's commands with its single object argument. */
  execute<T>(command: string, arg: object): Promise<T> {
    if (!this.client.isRunning()) {
      return Promise.reject(new Error('the language server is not running (see the PAS output)'));
    }
    return this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] }) as Promise<T>;
  }

  /** A task this window submitted FAILED or is in review flagged: say so, with what can be done about it. */
  private async showNotice(n: TaskNotice): Promise<void> {
    const show = n.level === 'error' ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    const choice = await show(n.message, ...noticeActions(n));
    if (choice === 'Show diff') {
      await vscode.commands.executeCommand('pas.showDiffTask', { task: n.task });
    } else if (choice === 'Reject') {
      await vscode.commands.executeCommand('pas.rejectTask', { task: n.task });
    }
  }

  private showStatus(s: PoolStatus): void {
    this.item.text = statusText(s);
    this.item.tooltip = statusTooltip(s);
  }

  private offline(reason: string): void {
    this.item.text = '$(debug-disconnect) PAS: offline';
    this.item.tooltip = `PAS: offline: ${reason}`;
  }

  async dispose(): Promise<void> {
    this.item.dispose();
    if (this.client.isRunning()) {
      await this.client.stop();
    }
  }
}

function rawSettings(config: vscode.WorkspaceConfiguration): Record<string, unknown> {
  return {
    models: config.get('models'),
    defaultModel: config.get('defaultModel'),
    socket: config.get('socket'),
  };
}
