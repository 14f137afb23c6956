/**
 * The panel's messages above the details: the server cannot be reached, a
 * restart is under way, a new QCS login is due ("Log in again"), the server
 * belongs to someone else, there are no credentials.
 */
import * as React from 'react';

import { formatDaysLeft, ITrans } from './format';
import { IQCSView, RestartPhase } from './model';

/** The QCS tokens page, where a token file can be downloaded. */
export const QCS_TOKENS_URL = 'https://qcs.rigetti.com/auth/token';

export function ConnectionError(props: {
  message: string;
  stale: boolean;
  trans: ITrans;
}): React.ReactElement {
  const { trans } = props;
  return (
    <div
      className="qcs-jupyter-callout"
      data-qcs-severity="error"
      data-qcs-field="connection-error"
    >
      {trans.__(
        'Cannot reach the qcs-jupyter server extension: %1',
        props.message
      )}
      {props.stale && (
        <div className="qcs-jupyter-hint">
          {trans.__('Showing the last known status.')}
        </div>
      )}
    </div>
  );
}

export function RestartProgress(props: {
  phase: RestartPhase;
  message: string;
}): React.ReactElement {
  const failed = props.phase === 'failed';
  return (
    <div
      className="qcs-jupyter-callout"
      data-qcs-field="restart-progress"
      data-qcs-phase={props.phase}
      data-qcs-severity={failed ? 'error' : 'info'}
      role="status"
    >
      {!failed && <span className="qcs-jupyter-spinner" aria-hidden="true" />}
      {props.message}
    </div>
  );
}

/**
 * "Log in again" in one click: why, and the button. Shown to the owner when
 * the server offers a login URL and says a login is due (or there are no
 * credentials to show).
 */
export function LoginCallout(props: {
  view: IQCSView;
  trans: ITrans;
  onLogin: () => void;
}): React.ReactElement {
  const { view, trans } = props;
  let message: string;
  if (view.relogin === 'expiring') {
    message = trans.__(
      'Your QCS login ends soon (%1). Log in again to renew it for %2 days.',
      formatDaysLeft(view.refreshDaysLeft, trans),
      view.refreshLifetimeDays
    );
  } else if (view.relogin === 'required') {
    message = trans.__(
      'Your QCS login has ended. Log in again to get fresh credentials.'
    );
  } else {
    message = trans.__('Log in again to get QCS credentials.');
  }
  return (
    <div
      className="qcs-jupyter-callout"
      data-qcs-field="relogin"
      data-qcs-reason={view.relogin ?? 'missing'}
      data-qcs-severity={view.relogin === 'expiring' ? 'warning' : 'error'}
    >
      <p>{message}</p>
      <button
        type="button"
        className="jp-Button jp-mod-styled jp-mod-accept qcs-jupyter-button"
        data-qcs-action="login"
        title={trans.__(
          'Log in through JupyterHub; you come back here with new credentials'
        )}
        onClick={props.onLogin}
      >
        {trans.__('Log in again')}
      </button>
    </div>
  );
}

export function NotOwnerNote(props: { trans: ITrans }): React.ReactElement {
  return (
    <p className="qcs-jupyter-hint" data-qcs-field="not-owner">
      {props.trans.__(
        "This is another user's server: their QCS identity and actions are not shown."
      )}
    </p>
  );
}

export function EmptyState(props: {
  trans: ITrans;
  /** "Log in again" is offered above: no manual how-to then. */
  loginOffered: boolean;
  /** Only the owner gets the how-to. */
  owner: boolean;
}): React.ReactElement {
  const { trans } = props;
  return (
    <section
      className="qcs-jupyter-section qcs-jupyter-empty"
      data-qcs-section="empty"
    >
      <h3>{trans.__('No QCS credentials')}</h3>
      <p>
        {trans.__(
          'The QCS SDK (pyQuil, qcs-sdk-python) reads credentials from ~/.qcs/settings.toml and ~/.qcs/secrets.toml. None were found.'
        )}
      </p>
      {props.owner && props.loginOffered && (
        <p>
          {trans.__(
            'Under JupyterHub they are written when you log in and while your server runs.'
          )}
        </p>
      )}
      {props.owner && !props.loginOffered && (
        <ul>
          <li>
            {trans.__('With the QCS CLI and a web browser, run')}{' '}
            <code>qcs api auth-get-user</code>{' '}
            {trans.__('and log in when asked; it writes the files for you.')}
          </li>
          <li>
            {trans.__('Or download a token file from the')}{' '}
            <a href={QCS_TOKENS_URL} target="_blank" rel="noopener noreferrer">
              {trans.__('QCS tokens page')}
            </a>{' '}
            {trans.__('and install it from a terminal with')}{' '}
            <code>qcs-jupyter install TOKEN.json</code>
          </li>
        </ul>
      )}
    </section>
  );
}
