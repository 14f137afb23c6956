/**
 * qcs-jupyter: Rigetti QCS credentials in JupyterLab.
 *
 * One plugin: a status item, a sidebar panel, notifications and four
 * commands, all fed by one `QCSModel` that polls `qcs-jupyter/status`.
 *
 * Every requirement is optional, so the same plugin runs in JupyterLab and in
 * Notebook 7 (`/tree` and the pages it opens). Notebook 7 has no status bar:
 * there the status item sits in the top area, and the panel in the left side
 * panel (View › Left Sidebar), which the item opens.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { firstProblem, ITrans, stateLabel } from './format';
import { qcsIcon } from './icon';
import { QCSModel } from './model';
import { notifyAlert } from './notify';
import { QCSPanel } from './panel';
import { IMarkStorage, startRelogin, takeReloginMark } from './relogin';
import { createApi, probeServer } from './request';
import { restartServer } from './restart';
import { QCSStatusItem } from './statusbar';
import {
  COMMAND_CATEGORY,
  CommandIDs,
  DEFAULT_POLL_INTERVAL_S,
  PLUGIN_ID,
  STATUS_ITEM_ID,
  TRANSLATION_DOMAIN
} from './tokens';
import { withNext } from './urls';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Shows the health of the Rigetti QCS credentials in ~/.qcs and refreshes them through JupyterHub.',
  autoStart: true,
  optional: [
    ISettingRegistry,
    ITranslator,
    ICommandPalette,
    IStatusBar,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const { commands, shell } = app;

    const model = new QCSModel({
      api: createApi(),
      pollInterval: DEFAULT_POLL_INTERVAL_S
    });
    const storage = tabStorage();
    // Back to this very page after the Hub's login or spawn: /tree, a notebook, JupyterLab.
    const goBackHere = (url: string) =>
      window.location.assign(withNext(url, currentPage(), serverPath()));
    const logIn = () =>
      void startRelogin({
        status: model.view.status,
        storage,
        navigate: goBackHere
      });

    const panel = new QCSPanel({
      model,
      trans,
      onRestart: () => void commands.execute(CommandIDs.restart),
      onRefresh: () => void commands.execute(CommandIDs.refresh),
      onLogin: logIn,
      onCheckQCS: () => void commands.execute(CommandIDs.checkQCS),
      onCopyPath: path => Clipboard.copyToSystem(path)
    });
    panel.title.icon = qcsIcon;
    shell.add(panel, 'left', { rank: 1000 });
    restorer?.add(panel, 'qcs-jupyter');

    // --- commands -------------------------------------------------------
    commands.addCommand(CommandIDs.open, {
      label: trans.__('Open QCS Credentials Panel'),
      caption: trans.__('Show the state of your QCS credentials'),
      icon: args => (args['isPalette'] ? undefined : qcsIcon),
      execute: async () => {
        // Before the layout is restored, the restorer would put the sidebar back as it was.
        await app.restored;
        shell.activateById(panel.id);
      }
    });

    commands.addCommand(CommandIDs.restart, {
      label: trans.__('Restart Server to Refresh QCS Credentials'),
      caption: trans.__(
        'Stop this server and let JupyterHub start a new one with fresh credentials'
      ),
      isEnabled: () => model.canRestart,
      execute: async () => {
        const outcome = await restartServer({
          model,
          trans,
          confirm: () => confirmRestart(trans),
          // Wait until the Hub has finished stopping it: a spawn before that lands on "stopping".
          ping: async () => (await probeServer()) !== 'stopped',
          navigate: goBackHere,
          fallbackUrl: hubHomeUrl()
        });
        if (outcome === 'failed') {
          Notification.error(model.restartMessage, { autoClose: false });
        }
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: trans.__('Refresh QCS Credentials from the Hub'),
      caption: trans.__('Pull fresh credentials from JupyterHub now'),
      isEnabled: () => model.canRefresh,
      execute: () => refreshAndReport(model, trans)
    });

    commands.addCommand(CommandIDs.checkQCS, {
      label: trans.__('Check QCS Credentials with QCS'),
      caption: trans.__('Ask QCS whether it accepts your access token'),
      isEnabled: () => model.canCheckQCS,
      execute: async () => {
        if (!model.canCheckQCS) {
          return; // asked a moment ago, or a check is running: the panel says so
        }
        // The answer shows in the panel (from the palette, or Notebook 7 with the side panel closed, too).
        if (!panel.isVisible) {
          await commands.execute(CommandIDs.open);
        }
        await model.checkWithQCS();
      }
    });

    const commandIds = [
      CommandIDs.open,
      CommandIDs.checkQCS,
      CommandIDs.restart,
      CommandIDs.refresh
    ];
    model.changed.connect(() => {
      commands.notifyCommandChanged(CommandIDs.restart);
      commands.notifyCommandChanged(CommandIDs.refresh);
      commands.notifyCommandChanged(CommandIDs.checkQCS);
    });

    if (palette) {
      for (const command of commandIds) {
        palette.addItem({
          command,
          category: COMMAND_CATEGORY,
          args: { isPalette: true }
        });
      }
    }

    // --- status item: the status bar, else (Notebook 7) the top area ----
    const item = new QCSStatusItem({
      model,
      trans,
      onClick: () => void commands.execute(CommandIDs.open)
    });
    if (statusBar) {
      statusBar.registerStatusItem(STATUS_ITEM_ID, {
        item,
        align: 'left',
        rank: 1000,
        isActive: () => true
      });
    } else {
      item.id = 'qcs-jupyter-top-status';
      item.addClass('qcs-jupyter-top-item');
      shell.add(item, 'top', { rank: 1000 });
    }

    // --- notifications: once per transition -----------------------------
    let notificationId: string | null = null;
    model.alertChanged.connect((_, change) => {
      if (notificationId !== null) {
        Notification.dismiss(notificationId);
        notificationId = null;
      }
      if (change.notify) {
        notificationId = notifyAlert(change, trans, {
          login: logIn,
          restart: model.canRestart
            ? () => void commands.execute(CommandIDs.restart)
            : null,
          details: () => void commands.execute(CommandIDs.open)
        });
      }
    });

    // --- back from "Log in again": pull the new tokens at once ----------
    if (takeReloginMark(storage)) {
      void refreshAndReport(model, trans);
    }

    // --- settings -------------------------------------------------------
    if (settingRegistry) {
      Promise.all([settingRegistry.load(PLUGIN_ID), app.restored])
        .then(([settings]) => {
          const apply = () => {
            model.pollInterval = settings.get('pollInterval')
              .composite as number;
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error(`Failed to load settings for ${PLUGIN_ID}.`, reason);
        });
    }
  }
};

/** `POST refresh` and say how it went. */
async function refreshAndReport(model: QCSModel, trans: ITrans): Promise<void> {
  try {
    const status = await model.refreshFromHub();
    if (status.usable) {
      Notification.success(trans.__('QCS credentials refreshed.'), {
        autoClose: 3000
      });
    } else {
      Notification.warning(
        trans.__(
          'Refreshed, but the QCS credentials are still not usable: %1',
          firstProblem(status.problems) ?? stateLabel(status.state, trans)
        ),
        { autoClose: false }
      );
    }
  } catch (reason) {
    Notification.error(
      trans.__(
        'Could not refresh the QCS credentials: %1',
        reason instanceof Error ? reason.message : String(reason)
      ),
      { autoClose: false }
    );
  }
}

/** The page the user is on, as a path (no origin). */
function currentPage(): string {
  return window.location.pathname + window.location.search;
}

/** This server's URL path (`/user/ada/`). */
function serverPath(): string {
  try {
    return new URL(PageConfig.getBaseUrl(), window.location.href).pathname;
  } catch {
    return '/';
  }
}

/** This tab's `sessionStorage` (kept across the login round trip), if the browser allows it. */
function tabStorage(): IMarkStorage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

async function confirmRestart(trans: ITrans): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Restart server to refresh QCS credentials?'),
    body: trans.__(
      'This stops your Jupyter server, with all its running kernels and terminals, and lets JupyterHub start a new one with fresh QCS credentials. Save your work first: unsaved changes are lost.'
    ),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: trans.__('Restart') })
    ]
  });
  return result.button.accept;
}

/**
 * Where to go when the server names no spawn URL: the Hub's home page, when
 * the Hub is on this origin (a `hubHost` means another one; not followed).
 */
function hubHomeUrl(): string | null {
  const hubPrefix = PageConfig.getOption('hubPrefix');
  if (!hubPrefix || PageConfig.getOption('hubHost')) {
    return null;
  }
  return URLExt.join(hubPrefix, 'home');
}

export default plugin;
