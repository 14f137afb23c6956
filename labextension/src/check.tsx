/**
 * "Check with QCS": ask QCS whether it accepts the access token (the server
 * lists one page of the quantum processors the user can see) and show its
 * answer in plain words. Only on the user's request, never automatically.
 *
 * Browser tests: `[data-qcs-section=qcs-check]`, the button
 * `[data-qcs-action=check-qcs]`, the answer
 * `[data-qcs-field=qcs-check][data-qcs-outcome=accepted|refused|…]`.
 */
import * as React from 'react';

import { checkLabel, checkState, formatRelative, ITrans } from './format';
import { IQCSCheck } from './model';
import { Section, SlashBreaks, withCode } from './ui';

export interface ICheckSectionProps {
  check: IQCSCheck;
  trans: ITrans;
  /** Local epoch ms, for "checked … ago". */
  now: number;
  /** A check may be asked now (not running, not within the last few seconds). */
  canCheck: boolean;
  onCheck: () => void;
  /** "Log in again" for a refused token, when no other login button shows. */
  onLogin: (() => void) | null;
}

export function CheckSection(props: ICheckSectionProps): React.ReactElement {
  const { check, trans, canCheck } = props;
  const result = check.result;
  const showResult = result !== null && check.error === null;
  return (
    <Section name="qcs-check" title={trans.__('Check with QCS')}>
      <p className="qcs-jupyter-hint">
        {trans.__(
          'Ask QCS whether it accepts your access token: it lists the quantum processors you can see.'
        )}
      </p>
      <button
        type="button"
        className="jp-Button jp-mod-styled jp-mod-reject qcs-jupyter-button"
        data-qcs-action="check-qcs"
        aria-disabled={canCheck ? undefined : 'true'}
        title={
          canCheck
            ? trans.__('Ask QCS now with your current access token')
            : trans.__(
                'Asked a moment ago; QCS is asked at most every few seconds'
              )
        }
        // Whether QCS may be asked is decided at the click (this render may be up to a tick old).
        onClick={props.onCheck}
      >
        {check.checking
          ? trans.__('Checking with QCS…')
          : trans.__('Check with QCS')}
      </button>
      <div
        className="qcs-jupyter-check-answer"
        role="status"
        aria-live="polite"
      >
        {check.error !== null && (
          <p className="qcs-jupyter-hint" data-qcs-field="qcs-check-error">
            {check.error}
          </p>
        )}
        {showResult && result && (
          <div
            className="qcs-jupyter-check"
            data-qcs-field="qcs-check"
            data-qcs-outcome={result.outcome}
          >
            <span
              className="qcs-jupyter-pill"
              data-qcs-state={checkState(result.outcome)}
            >
              {checkLabel(result.outcome, trans)}
            </span>{' '}
            <span data-qcs-field="qcs-check-message">
              {withCode(result.message)}
            </span>
            {result.action && (
              <div className="qcs-jupyter-problem-action">
                {withCode(result.action)}
              </div>
            )}
            {result.outcome === 'refused' && props.onLogin && (
              <button
                type="button"
                className="jp-Button jp-mod-styled jp-mod-accept qcs-jupyter-button"
                data-qcs-action="login"
                onClick={props.onLogin}
              >
                {trans.__('Log in again')}
              </button>
            )}
            <div className="qcs-jupyter-hint" data-qcs-field="qcs-check-at">
              {trans.__(
                'Asked %1',
                formatRelative(result.checked_at, props.now, trans)
              )}
              {result.api_url && (
                <>
                  {' · '}
                  <SlashBreaks text={result.api_url} />
                </>
              )}
            </div>
          </div>
        )}
      </div>
    </Section>
  );
}
