/**
 * The "QCS credentials" sidebar panel.
 *
 * Stable hooks for browser tests: the widget node has class
 * `qcs-jupyter-panel` and `data-qcs-state`; sections carry
 * `data-qcs-section`, values `data-qcs-field`, buttons `data-qcs-action`,
 * problems `data-qcs-problem` (their code) and `data-qcs-severity`.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  daysLeftLevel,
  formatAge,
  formatCountdown,
  formatDateTime,
  formatDaysLeftOf,
  formatRelative,
  fractionLeft,
  ITrans,
  stateLabel
} from './format';
import { IQCSView, QCSModel } from './model';
import { PANEL_ID } from './tokens';

/** The QCS tokens page, where a token file can be downloaded. */
export const QCS_TOKENS_URL = 'https://qcs.rigetti.com/auth/token';

export interface IQCSPanelOptions {
  model: QCSModel;
  trans: ITrans;
  /** Run the restart flow (the `qcs-jupyter:restart` command). */
  onRestart: () => void;
  /** Pull from the Hub now (the `qcs-jupyter:refresh` command). */
  onRefresh: () => void;
}

export class QCSPanel extends ReactWidget {
  constructor(options: IQCSPanelOptions) {
    super();
    this._options = options;
    this.id = PANEL_ID;
    this.addClass('qcs-jupyter-panel');
    this.title.caption = options.trans.__('QCS credentials');
    const { model } = options;
    model.changed.connect(this._onChanged, this);
    model.ticked.connect(this._onTicked, this);
    this._syncNode(model.view);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._options.model.changed.disconnect(this._onChanged, this);
    this._options.model.ticked.disconnect(this._onTicked, this);
    super.dispose();
  }

  protected render(): React.ReactElement {
    const { model, trans, onRestart, onRefresh } = this._options;
    return (
      <PanelView
        view={model.view}
        model={model}
        trans={trans}
        now={Date.now()}
        onRestart={onRestart}
        onRefresh={onRefresh}
        onCheck={() => void model.checkNow().catch(() => undefined)}
      />
    );
  }

  private _onChanged(_: QCSModel, view: IQCSView): void {
    this._syncNode(view);
    this.update();
  }

  private _onTicked(): void {
    // Countdowns only; nothing to redraw while hidden.
    if (this.isVisible) {
      this.update();
    }
  }

  private _syncNode(view: IQCSView): void {
    this.node.dataset.qcsState = view.state;
    this.node.dataset.qcsUsable = String(view.usable);
  }

  private _options: IQCSPanelOptions;
}

interface IPanelViewProps {
  view: IQCSView;
  model: QCSModel;
  trans: ITrans;
  now: number;
  onRestart: () => void;
  onRefresh: () => void;
  onCheck: () => void;
}

function Row(props: {
  label: string;
  field: string;
  children: React.ReactNode;
  title?: string;
}): React.ReactElement {
  return (
    <>
      <dt>{props.label}</dt>
      <dd data-qcs-field={props.field} title={props.title}>
        {props.children}
      </dd>
    </>
  );
}

/** Render `backticked` parts of server text as code. */
export function withCode(text: string): React.ReactNode[] {
  return text
    .split('`')
    .map((part, i) =>
      i % 2 === 1 ? <code key={i}>{part}</code> : <span key={i}>{part}</span>
    );
}

function orDash(value: string | null | undefined): string {
  return value ? value : '—';
}

function PanelView(props: IPanelViewProps): React.ReactElement {
  const { view, model, trans, now } = props;
  const status = view.status;
  const hub = status?.hub ?? null;
  const identity = status?.identity ?? null;
  const problems = status?.problems ?? [];
  const noCredentials =
    !view.loading &&
    status !== null &&
    (view.state === 'missing' || (!view.accessPresent && !view.refreshPresent));

  return (
    <div className="qcs-jupyter-panel-body" data-qcs-state={view.state}>
      <header className="qcs-jupyter-header">
        <h2 className="qcs-jupyter-title">{trans.__('QCS credentials')}</h2>
        <span
          className="qcs-jupyter-badge"
          data-qcs-state={view.state}
          data-qcs-field="state"
        >
          {view.loading ? trans.__('Checking…') : stateLabel(view.state, trans)}
        </span>
      </header>

      {view.connectionError !== null && (
        <div
          className="qcs-jupyter-callout"
          data-qcs-severity="error"
          data-qcs-field="connection-error"
        >
          {trans.__(
            'Cannot reach the qcs-jupyter server extension: %1',
            view.connectionError
          )}
          {status !== null && (
            <div className="qcs-jupyter-hint">
              {trans.__('Showing the last known status.')}
            </div>
          )}
        </div>
      )}

      {model.restartPhase !== 'idle' && (
        <div
          className="qcs-jupyter-callout qcs-jupyter-restart-progress"
          data-qcs-field="restart-progress"
          data-qcs-phase={model.restartPhase}
          data-qcs-severity={model.restartPhase === 'failed' ? 'error' : 'info'}
          role="status"
        >
          {model.restartPhase !== 'failed' && (
            <span className="qcs-jupyter-spinner" aria-hidden="true" />
          )}
          {model.restartMessage}
        </div>
      )}

      {noCredentials && (
        <EmptyState trans={trans} hubAvailable={!!hub?.available} />
      )}

      {status !== null && !noCredentials && (
        <>
          <section className="qcs-jupyter-section" data-qcs-section="identity">
            <h3>{trans.__('Identity')}</h3>
            <dl>
              <Row label={trans.__('Name')} field="name">
                {orDash(identity?.name)}
              </Row>
              <Row label={trans.__('Email')} field="email">
                {orDash(identity?.email)}
              </Row>
              <Row label={trans.__('Subject')} field="subject">
                {orDash(identity?.subject)}
              </Row>
              <Row label={trans.__('Profile')} field="profile">
                {orDash(status.profile)}
              </Row>
            </dl>
          </section>

          <section
            className="qcs-jupyter-section"
            data-qcs-section="access-token"
          >
            <h3>{trans.__('Access token')}</h3>
            <dl>
              <Row label={trans.__('Status')} field="access-status">
                <span
                  className="qcs-jupyter-pill"
                  data-qcs-state={
                    !view.accessPresent
                      ? 'missing'
                      : view.accessValid
                        ? 'ok'
                        : 'expired'
                  }
                  data-qcs-valid={String(view.accessValid)}
                >
                  {!view.accessPresent
                    ? trans.__('Not present')
                    : view.accessValid
                      ? trans.__('Valid')
                      : trans.__('Expired')}
                </span>
              </Row>
              {view.accessPresent && (
                <Row
                  label={trans.__('Expires in')}
                  field="access-countdown"
                  title={formatDateTime(status.access_token?.expires_at)}
                >
                  {formatCountdown(view.accessSecondsLeft, trans)}
                </Row>
              )}
            </dl>
            {view.accessPresent &&
              !view.accessValid &&
              view.refreshPresent &&
              !hub?.available && (
                <p className="qcs-jupyter-hint">
                  {trans.__(
                    'The QCS SDK renews the access token with the refresh token on its next request.'
                  )}
                </p>
              )}
          </section>

          <section
            className="qcs-jupyter-section"
            data-qcs-section="refresh-token"
          >
            <h3>{trans.__('Refresh token')}</h3>
            <dl>
              <Row label={trans.__('Present')} field="refresh-present">
                {view.refreshPresent ? trans.__('Yes') : trans.__('No')}
              </Row>
              {view.refreshPresent && (
                <>
                  <Row
                    label={trans.__('Age')}
                    field="refresh-age"
                    title={formatDateTime(status.refresh_token?.obtained_at)}
                  >
                    {formatAge(view.refreshAgeDays, trans)}
                  </Row>
                  <Row label={trans.__('Lifetime')} field="refresh-days-left">
                    {formatDaysLeftOf(
                      view.refreshDaysLeft,
                      view.refreshLifetimeDays,
                      trans
                    )}
                  </Row>
                </>
              )}
            </dl>
            {view.refreshPresent && view.refreshDaysLeft !== null && (
              <DaysBar view={view} model={model} trans={trans} />
            )}
          </section>

          <section className="qcs-jupyter-section" data-qcs-section="hub">
            <h3>{trans.__('JupyterHub')}</h3>
            <dl>
              <Row label={trans.__('Hub')} field="hub-available">
                {hub?.available
                  ? trans.__('Connected')
                  : orDash(hub?.reason ?? trans.__('Not available'))}
              </Row>
              {hub?.available && (
                <Row
                  label={trans.__('Last sync')}
                  field="hub-last-sync"
                  title={formatDateTime(hub.last_sync)}
                >
                  {formatRelative(hub.last_sync, now, trans)}
                </Row>
              )}
              {hub?.last_sync_error && (
                <Row label={trans.__('Sync error')} field="hub-last-sync-error">
                  {hub.last_sync_error}
                </Row>
              )}
            </dl>
          </section>

          <section className="qcs-jupyter-section" data-qcs-section="files">
            <h3>{trans.__('Files')}</h3>
            <dl>
              <Row label={trans.__('Settings')} field="settings-path">
                <code>{orDash(status.settings_path)}</code>
              </Row>
              <Row label={trans.__('Secrets')} field="secrets-path">
                <code>{orDash(status.secrets_path)}</code>
              </Row>
              {status.auth_server?.issuer && (
                <Row label={trans.__('Issuer')} field="issuer">
                  <code>{status.auth_server.issuer}</code>
                </Row>
              )}
              {status.auth_server?.client_id && (
                <Row label={trans.__('Client ID')} field="client-id">
                  <code>{status.auth_server.client_id}</code>
                </Row>
              )}
            </dl>
          </section>
        </>
      )}

      {problems.length > 0 && (
        <section className="qcs-jupyter-section" data-qcs-section="problems">
          <h3>{trans.__('Problems')}</h3>
          <ul className="qcs-jupyter-problems">
            {problems.map((p, i) => (
              <li
                key={`${p.code}-${i}`}
                className="qcs-jupyter-problem"
                data-qcs-problem={p.code}
                data-qcs-severity={p.severity}
              >
                <div className="qcs-jupyter-problem-message">
                  {withCode(p.message)}
                </div>
                {p.action && (
                  <div className="qcs-jupyter-problem-action">
                    {withCode(p.action)}
                  </div>
                )}
              </li>
            ))}
          </ul>
        </section>
      )}

      <Actions {...props} />

      {status?.checked_at && (
        <footer className="qcs-jupyter-footer" data-qcs-field="checked-at">
          {trans.__(
            'Checked %1',
            formatRelative(status.checked_at, now, trans)
          )}
        </footer>
      )}
    </div>
  );
}

function DaysBar(props: {
  view: IQCSView;
  model: QCSModel;
  trans: ITrans;
}): React.ReactElement {
  const { view, model, trans } = props;
  const fraction = fractionLeft(view.refreshDaysLeft, view.refreshLifetimeDays);
  const level = daysLeftLevel(view.refreshDaysLeft, model.warningDays);
  const pct = Math.round(fraction * 100);
  return (
    <div
      className="qcs-jupyter-bar"
      data-qcs-field="refresh-bar"
      data-qcs-state={level}
      role="progressbar"
      aria-label={trans.__('Refresh token lifetime left')}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct}
    >
      <div className="qcs-jupyter-bar-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}

function Actions(props: IPanelViewProps): React.ReactElement {
  const { view, model, trans } = props;
  const hub = view.status?.hub ?? null;
  const canRestart = model.canRestart;
  const canRefresh = model.canRefresh;
  const reason =
    hub?.reason ??
    (hub?.available
      ? trans.__('The Hub does not allow this server to restart itself.')
      : trans.__('Not running under JupyterHub.'));
  return (
    <div className="qcs-jupyter-actions">
      <button
        type="button"
        className="jp-Button jp-mod-styled jp-mod-accept qcs-jupyter-button"
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
      {!hub?.restart_available && (
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
          {model.refreshing ? trans.__('Refreshing…') : trans.__('Refresh now')}
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

function EmptyState(props: {
  trans: ITrans;
  hubAvailable: boolean;
}): React.ReactElement {
  const { trans, hubAvailable } = props;
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
      {hubAvailable && (
        <p>
          {trans.__(
            'Under JupyterHub they are written when your server starts: log out of the Hub and log in again, then restart your server.'
          )}
        </p>
      )}
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
    </section>
  );
}
