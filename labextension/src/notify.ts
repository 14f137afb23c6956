/**
 * Notifications: one per transition into "warning" or "unusable" (see
 * `AlertTracker`), with the one action that helps — "Log in again" when the
 * server says a login is due, else "Restart server" when the Hub allows it —
 * and "Details".
 */
import { Notification } from '@jupyterlab/apputils';

import { alertMessage, ITrans } from './format';
import { IAlertChange } from './model';

/** What the notification's buttons do. */
export interface INotifyActions {
  /** "Log in again" (offered when the view has a login URL and a reason). */
  login: () => void;
  /** "Restart server", or null when it cannot be offered now. */
  restart: (() => void) | null;
  /** Open the panel. */
  details: () => void;
}

/** Show the notification for a transition; returns its id. */
export function notifyAlert(
  change: IAlertChange,
  trans: ITrans,
  actions: INotifyActions
): string {
  const { view } = change;
  const buttons: Notification.IAction[] = [];
  if (view.loginUrl !== null && view.relogin !== null) {
    buttons.push({
      label: trans.__('Log in again'),
      caption: trans.__('Log in through JupyterHub and come back here'),
      displayType: 'accent',
      callback: actions.login
    });
  } else if (actions.restart) {
    buttons.push({
      label: trans.__('Restart server'),
      caption: trans.__('Stop this server and start a new one from the Hub'),
      displayType: 'accent',
      callback: actions.restart
    });
  }
  buttons.push({
    label: trans.__('Details'),
    caption: trans.__('Open the QCS credentials panel'),
    displayType: 'link',
    callback: actions.details
  });
  const message = alertMessage(change, trans);
  const options = { autoClose: false as const, actions: buttons };
  return change.level === 'warning'
    ? Notification.warning(message, options)
    : Notification.error(message, options);
}
