/**
 * The panel's buttons: "Restart server to refresh", "Refresh now", "Check
 * again". Shown to the server's owner only. ("Log in again" sits in its
 * callout, next to the reason.)
 */
import * as React from 'react';

import { ITrans } from './format';
import { IQCSHubInfo } from './tokens';

export interface IActionsProps {
  hub: IQCSHubInfo | null;
  trans: ITrans;
  canRestart: boolean;
  canRefresh: boolean;
  refreshing: boolean;
  /** A login is offered: restarting would not help, so it is not the default. */
  loginOffered: boolean;
  onRestart: () => void;
  onRefresh: () => void;
  onCheck: () => void;
}

export function Actions(props: IActionsProps): React.ReactElement {
  const { hub, trans, canRestart, canRefresh } = props;
  const reason =
    hub?.reason ??
    (hub?.available
      ? trans.__('The Hub does not allow this server to restart itself.')
      : trans.__('Not running under JupyterHub.'));
  const primary = props.loginOffered ? 'jp-mod-reject' : 'jp-mod-accept';
  return (
    <div className="qcs-jupyter-actions">
      <button
        type="button"
        className={`jp-Button jp-mod-styled ${primary} qcs-jupyter-button`}
        data-qcs-action="restart"
        disabled={!canRestart}
        title={
          canRestart
            ? trans.__('Stop this server and let the Hub start a new one')
            : reason
        }
        onClick={props.onRestart}
      >
        {trans.__('Restart server to refresh')}
      </button>
      {hub?.available && !hub.restart_available && (
        <div className="qcs-jupyter-hint" data-qcs-field="restart-reason">
          {reason}
        </div>
      )}
      <div className="qcs-jupyter-button-row">
        <button
          type="button"
          className="jp-Button jp-mod-styled jp-mod-reject qcs-jupyter-button"
          data-qcs-action="refresh"
          disabled={!canRefresh}
          title={
            canRefresh
              ? trans.__('Pull fresh credentials from the Hub now')
              : (hub?.reason ?? trans.__('Not available'))
          }
          onClick={props.onRefresh}
        >
          {props.refreshing ? trans.__('Refreshing…') : trans.__('Refresh now')}
        </button>
        <button
          type="button"
          className="jp-Button jp-mod-styled jp-mod-reject qcs-jupyter-button"
          data-qcs-action="check"
          title={trans.__('Read the credential files again')}
          onClick={props.onCheck}
        >
          {trans.__('Check again')}
        </button>
      </div>
    </div>
  );
}
