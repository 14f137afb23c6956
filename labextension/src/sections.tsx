/**
 * The panel's information sections, each one thing: identity, access token,
 * refresh token, Hub link, files, problems. They only render a view.
 */
import * as React from 'react';

import {
  formatAge,
  formatCountdown,
  formatDateTime,
  formatDaysLeftOf,
  formatRelative,
  fractionLeft,
  ITrans
} from './format';
import { IQCSView } from './model';
import { IQCSProblem, IQCSStatus } from './tokens';
import { orDash, PathValue, Row, Section, SlashBreaks, withCode } from './ui';

interface ISectionProps {
  view: IQCSView;
  status: IQCSStatus;
  trans: ITrans;
}

export function IdentitySection(props: ISectionProps): React.ReactElement {
  const { status, trans } = props;
  const identity = status.identity;
  return (
    <Section name="identity" title={trans.__('Identity')}>
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
    </Section>
  );
}

export function AccessTokenSection(props: ISectionProps): React.ReactElement {
  const { view, status, trans } = props;
  let pill: [string, string];
  if (!view.accessPresent) {
    pill = ['missing', trans.__('Not present')];
  } else if (view.accessValid) {
    pill = ['ok', trans.__('Valid')];
  } else {
    pill = ['expired', trans.__('Expired')];
  }
  return (
    <Section name="access-token" title={trans.__('Access token')}>
      <dl>
        <Row label={trans.__('Status')} field="access-status">
          <span
            className="qcs-jupyter-pill"
            data-qcs-state={pill[0]}
            data-qcs-valid={String(view.accessValid)}
          >
            {pill[1]}
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
        !status.hub?.available && (
          <p className="qcs-jupyter-hint">
            {trans.__(
              'The QCS SDK renews the access token with the refresh token on its next request.'
            )}
          </p>
        )}
    </Section>
  );
}

export function RefreshTokenSection(props: ISectionProps): React.ReactElement {
  const { view, status, trans } = props;
  return (
    <Section name="refresh-token" title={trans.__('Refresh token')}>
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
        <LifetimeBar view={view} trans={trans} />
      )}
    </Section>
  );
}

/** The share of the refresh token's lifetime left, coloured as the server rates it. */
function LifetimeBar(props: {
  view: IQCSView;
  trans: ITrans;
}): React.ReactElement {
  const { view, trans } = props;
  const pct = Math.round(
    fractionLeft(view.refreshDaysLeft, view.refreshLifetimeDays) * 100
  );
  return (
    <div
      className="qcs-jupyter-bar"
      data-qcs-field="refresh-bar"
      data-qcs-state={view.refreshLevel}
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

export function HubSection(
  props: ISectionProps & { now: number }
): React.ReactElement {
  const { status, trans, now } = props;
  const hub = status.hub;
  return (
    <Section name="hub" title={trans.__('JupyterHub')}>
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
    </Section>
  );
}

export function FilesSection(
  props: ISectionProps & { onCopy?: (path: string) => void }
): React.ReactElement {
  const { status, trans, onCopy } = props;
  const server = status.auth_server;
  const home = status.home_dir;
  return (
    <Section name="files" title={trans.__('Files')}>
      <dl>
        <Row label={trans.__('Settings')} field="settings-path">
          <PathValue
            path={status.settings_path}
            home={home}
            name="settings"
            onCopy={onCopy}
            copyLabel={trans.__('Copy the full path of settings.toml')}
            copiedLabel={trans.__('Copied the full path of settings.toml')}
          />
        </Row>
        <Row label={trans.__('Secrets')} field="secrets-path">
          <PathValue
            path={status.secrets_path}
            home={home}
            name="secrets"
            onCopy={onCopy}
            copyLabel={trans.__('Copy the full path of secrets.toml')}
            copiedLabel={trans.__('Copied the full path of secrets.toml')}
          />
        </Row>
        {server?.issuer && (
          <Row label={trans.__('Issuer')} field="issuer">
            <SlashBreaks text={server.issuer} />
          </Row>
        )}
        {server?.client_id && (
          <Row label={trans.__('Client ID')} field="client-id">
            <code>{server.client_id}</code>
          </Row>
        )}
      </dl>
    </Section>
  );
}

export function ProblemsSection(props: {
  problems: IQCSProblem[];
  trans: ITrans;
}): React.ReactElement {
  return (
    <Section name="problems" title={props.trans.__('Problems')}>
      <ul className="qcs-jupyter-problems">
        {props.problems.map((p, i) => (
          <li
            key={`${p.code}-${i}`}
            className="qcs-jupyter-problem"
            data-qcs-problem={p.code}
            data-qcs-severity={p.severity}
          >
            <div>{withCode(p.message)}</div>
            {p.action && (
              <div className="qcs-jupyter-problem-action">
                {withCode(p.action)}
              </div>
            )}
          </li>
        ))}
      </ul>
    </Section>
  );
}
