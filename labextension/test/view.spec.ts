/** The panel's markup for one view, rendered in Node (react-dom/server). */
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';

import { deriveView, IQCSView } from '../src/model';
import { IQCSStatus } from '../src/tokens';
import { IPanelViewProps, PanelView } from '../src/view';
import {
  checkResult,
  makeStatus,
  NO_ACCESS,
  NO_REFRESH,
  problem,
  withHub
} from './fixtures';
import { trans } from './trans';

const T0 = Date.parse('2026-11-24T05:40:00Z');

function render(
  status: IQCSStatus | null,
  props: Partial<IPanelViewProps> = {}
) {
  const view: IQCSView = deriveView(status, null, { receivedAt: T0, now: T0 });
  const html = renderToStaticMarkup(
    React.createElement(PanelView, {
      view,
      trans,
      now: T0,
      restartPhase: 'idle',
      restartMessage: '',
      canRestart: view.owner,
      canRefresh: view.owner,
      refreshing: false,
      onRestart: () => undefined,
      onRefresh: () => undefined,
      onCheck: () => undefined,
      onLogin: () => undefined,
      ...props
    })
  );
  return { html, has: (selector: string) => html.includes(selector) };
}

const expiringProblem = problem(
  'refresh_token_expiring',
  'warning',
  'The refresh token expires in about 4 days.'
);

describe('PanelView', () => {
  it('shows identity and actions to the owner, and no login when none is due', () => {
    const { has } = render(makeStatus());
    expect(has('data-qcs-section="identity"')).toBe(true);
    expect(has('ada@example.org')).toBe(true);
    expect(has('data-qcs-action="restart"')).toBe(true);
    expect(has('data-qcs-action="refresh"')).toBe(true);
    expect(has('data-qcs-action="login"')).toBe(false);
  });

  it('offers "Log in again" when the Hub says the login ended', () => {
    const { html, has } = render(withHub({ relogin_required: true }));
    expect(has('data-qcs-field="relogin"')).toBe(true);
    expect(has('data-qcs-reason="required"')).toBe(true);
    expect(has('data-qcs-action="login"')).toBe(true);
    expect(html).toContain('Your QCS login has ended.');
    expect(html).not.toContain('log out');
    // Restart would not help: it is no longer the default button.
    expect(html).toMatch(/jp-mod-reject[^"]*" data-qcs-action="restart"/);
  });

  it('offers "Log in again" when the refresh token is within warning_days', () => {
    const status = makeStatus({
      state: 'expiring',
      refresh_token: { ...makeStatus().refresh_token!, days_left: 4.2 },
      problems: [expiringProblem]
    });
    const { html } = render(status);
    expect(html).toContain('data-qcs-reason="expiring"');
    expect(html).toContain(
      'Your QCS login ends soon (4 days left). Log in again to renew it for 90 days.'
    );
  });

  it('offers "Log in again" instead of manual steps when there are no credentials', () => {
    const { html } = render(
      withHub(
        {},
        {
          state: 'missing',
          usable: false,
          access_token: NO_ACCESS,
          refresh_token: NO_REFRESH
        }
      )
    );
    expect(html).toContain('data-qcs-section="empty"');
    expect(html).toContain('data-qcs-action="login"');
    expect(html).not.toContain('qcs-jupyter install');
    expect(html).not.toContain('log out of the Hub');
  });

  it('shows the manual steps without a Hub login', () => {
    const { html } = render(
      withHub(
        { login_url: null, available: false },
        {
          state: 'missing',
          usable: false,
          access_token: NO_ACCESS,
          refresh_token: NO_REFRESH
        }
      )
    );
    expect(html).toContain('qcs-jupyter install');
    expect(html).not.toContain('data-qcs-action="login"');
  });

  it('never links "Log in again" to another origin', () => {
    const { has } = render(
      withHub({
        relogin_required: true,
        login_url: 'https://evil.example.org/hub/oauth_login'
      })
    );
    expect(has('data-qcs-action="login"')).toBe(false);
    expect(has('evil.example.org')).toBe(false);
  });

  it('shows a non-owner no identity and no actions', () => {
    const { html, has } = render(
      withHub({ owner: false, relogin_required: true })
    );
    expect(has('data-qcs-field="not-owner"')).toBe(true);
    expect(has('data-qcs-section="identity"')).toBe(false);
    expect(html).not.toContain('ada@example.org');
    expect(html).not.toContain('data-qcs-action=');
  });

  it('shows the server state as is', () => {
    const { html } = render(makeStatus({ state: 'expired', usable: false }));
    expect(html).toMatch(
      /data-qcs-state="expired" data-qcs-field="state">Expired/
    );
  });

  it('shows paths under the home as ~/…, the full path on hover, with copy buttons', () => {
    const { html } = render(makeStatus(), { onCopyPath: () => undefined });
    expect(html).toContain('title="/home/ada/.qcs/settings.toml"');
    expect(html).toContain(
      '<span class="qcs-jupyter-path-part">~/</span><wbr/><span class="qcs-jupyter-path-part">.qcs/</span><wbr/><span class="qcs-jupyter-path-part">settings.toml</span>'
    );
    expect(html).toContain(
      'data-qcs-action="copy-path" data-qcs-path="settings"'
    );
    expect(html).toContain('aria-label="Copy the full path of secrets.toml"');
  });

  it('offers no copy button to a non-owner', () => {
    const { has } = render(withHub({ owner: false }), {
      onCopyPath: () => undefined
    });
    expect(has('copy-path')).toBe(false);
  });

  const check = (result = checkResult(), error: string | null = null) => ({
    qcsCheck: { checking: false, result, error, nextAt: T0 },
    canCheckQCS: true,
    onCheckQCS: () => undefined
  });

  it('offers "Check with QCS" and shows its answer in plain words', () => {
    const { html, has } = render(makeStatus(), check());
    expect(has('data-qcs-action="check-qcs"')).toBe(true);
    expect(html).toContain(
      'data-qcs-field="qcs-check" data-qcs-outcome="accepted"'
    );
    expect(html).toContain('you can see 2 quantum processors');
    expect(html).toContain('role="status"');
  });

  it('shows nothing asked before the first check', () => {
    const { has } = render(makeStatus(), {
      ...check(),
      qcsCheck: { checking: false, result: null, error: null, nextAt: 0 }
    });
    expect(has('data-qcs-action="check-qcs"')).toBe(true);
    expect(has('data-qcs-field="qcs-check"')).toBe(false);
  });

  it('offers "Log in again" once when QCS refused the token', () => {
    const refused = checkResult({
      outcome: 'refused',
      message: 'QCS refused the access token (HTTP 401).',
      action: 'Log in again.'
    });
    const one = render(makeStatus(), check(refused));
    expect(one.html.match(/data-qcs-action="login"/g)?.length).toBe(1);
    // The login callout already offers it: no second button.
    const two = render(withHub({ relogin_required: true }), check(refused));
    expect(two.html.match(/data-qcs-action="login"/g)?.length).toBe(1);
  });

  it('says why a check could not be made', () => {
    const { html } = render(
      makeStatus(),
      check(checkResult(), 'try again in 4 s')
    );
    expect(html).toContain('data-qcs-field="qcs-check-error"');
    expect(html).not.toContain('data-qcs-field="qcs-check" ');
  });

  it('shows a non-owner no check', () => {
    const { has } = render(withHub({ owner: false }), check());
    expect(has('check-qcs')).toBe(false);
  });
});
