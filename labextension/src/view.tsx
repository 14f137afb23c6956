/**
 * `PanelView`: the whole panel for one view, laid out from its parts
 * (callouts.tsx, sections.tsx, actions.tsx). Pure, so it renders in tests
 * without JupyterLab.
 *
 * Stable hooks for browser tests: sections carry `data-qcs-section`, values
 * `data-qcs-field`, buttons `data-qcs-action`, problems `data-qcs-problem`
 * (their code) and `data-qcs-severity`.
 */
import * as React from 'react';

import { Actions } from './actions';
import { CheckSection } from './check';
import {
  ConnectionError,
  EmptyState,
  LoginCallout,
  NotOwnerNote,
  RestartProgress
} from './callouts';
import { formatRelative, ITrans, stateLabel } from './format';
import { IQCSCheck, IQCSView, RestartPhase } from './model';
import {
  AccessTokenSection,
  FilesSection,
  HubSection,
  IdentitySection,
  ProblemsSection,
  RefreshTokenSection
} from './sections';

export interface IPanelViewProps {
  view: IQCSView;
  trans: ITrans;
  /** Local epoch ms, for "… ago". */
  now: number;
  restartPhase: RestartPhase;
  restartMessage: string;
  canRestart: boolean;
  canRefresh: boolean;
  refreshing: boolean;
  onRestart: () => void;
  onRefresh: () => void;
  onCheck: () => void;
  onLogin: () => void;
  /** "Check with QCS": the last answer; the section is left out without it. */
  qcsCheck?: IQCSCheck;
  canCheckQCS?: boolean;
  onCheckQCS?: () => void;
  /** Copy a full path to the clipboard; no copy buttons without it. */
  onCopyPath?: (path: string) => void;
}

export function PanelView(props: IPanelViewProps): React.ReactElement {
  const { view, trans, now } = props;
  const { status, owner } = view;
  const noCredentials =
    status !== null &&
    (view.state === 'missing' || (!view.accessPresent && !view.refreshPresent));
  // The owner is offered a login when the server says one is due, or when there is nothing to show.
  const loginOffered =
    view.loginUrl !== null && (view.relogin !== null || noCredentials);
  const problems = status?.problems ?? [];

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
        <ConnectionError
          message={view.connectionError}
          stale={status !== null}
          trans={trans}
        />
      )}
      {props.restartPhase !== 'idle' && (
        <RestartProgress
          phase={props.restartPhase}
          message={props.restartMessage}
        />
      )}
      {!owner && <NotOwnerNote trans={trans} />}
      {loginOffered && (
        <LoginCallout view={view} trans={trans} onLogin={props.onLogin} />
      )}

      {noCredentials && (
        <EmptyState trans={trans} owner={owner} loginOffered={loginOffered} />
      )}
      {status !== null && !noCredentials && (
        <>
          {owner && (
            <IdentitySection view={view} status={status} trans={trans} />
          )}
          <AccessTokenSection view={view} status={status} trans={trans} />
          <RefreshTokenSection view={view} status={status} trans={trans} />
          <HubSection view={view} status={status} trans={trans} now={now} />
          <FilesSection
            view={view}
            status={status}
            trans={trans}
            onCopy={owner ? props.onCopyPath : undefined}
          />
        </>
      )}
      {problems.length > 0 && (
        <ProblemsSection problems={problems} trans={trans} />
      )}
      {owner &&
        status !== null &&
        !noCredentials &&
        props.qcsCheck &&
        props.onCheckQCS && (
          <CheckSection
            check={props.qcsCheck}
            trans={trans}
            now={now}
            canCheck={!!props.canCheckQCS}
            onCheck={props.onCheckQCS}
            onLogin={
              !loginOffered && view.loginUrl !== null ? props.onLogin : null
            }
          />
        )}

      {owner && (
        <Actions
          hub={status?.hub ?? null}
          trans={trans}
          canRestart={props.canRestart}
          canRefresh={props.canRefresh}
          refreshing={props.refreshing}
          loginOffered={loginOffered}
          onRestart={props.onRestart}
          onRefresh={props.onRefresh}
          onCheck={props.onCheck}
        />
      )}

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
