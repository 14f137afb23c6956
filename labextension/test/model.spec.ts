import {
  AlertTracker,
  deriveView,
  IQCSApi,
  IQCSView,
  QCSModel,
  retryAfterS,
  sanitizePollInterval
} from '../src/model';
import { IQCSCheckResult, IQCSStatus, QCSState } from '../src/tokens';
import {
  checkResult,
  makeStatus,
  NO_ACCESS,
  NO_REFRESH,
  problem,
  refreshToken,
  withHub
} from './fixtures';

const T0 = Date.parse('2026-11-24T05:40:00Z');
const opts = (elapsedS = 0) => ({
  receivedAt: T0,
  now: T0 + elapsedS * 1000
});

describe('deriveView', () => {
  it('is loading before the first answer', () => {
    const v = deriveView(null, null, opts());
    expect(v.loading).toBe(true);
    expect(v.state).toBe('missing');
    expect(v.alert).toBe('none');
  });

  it('is an error when the first request failed', () => {
    const v = deriveView(null, 'Network error', opts());
    expect(v.loading).toBe(false);
    expect(v.state).toBe('error');
    expect(v.connectionError).toBe('Network error');
    expect(v.alert).toBe('none');
  });

  it('counts the access token down from the moment of receipt', () => {
    const s = makeStatus();
    expect(deriveView(s, null, opts(0)).accessSecondsLeft).toBe(1200);
    expect(deriveView(s, null, opts(200)).accessSecondsLeft).toBe(1000);
    const late = deriveView(s, null, opts(1201));
    expect(late.accessSecondsLeft).toBeLessThan(0);
    expect(late.accessValid).toBe(false);
  });

  it('falls back to expires_at and the local clock', () => {
    const s = makeStatus({
      access_token: {
        present: true,
        expires_at: '2026-11-24T06:00:00Z',
        expires_in_seconds: null,
        valid: true,
        renewed_by: 'client'
      }
    });
    expect(deriveView(s, null, opts(0)).accessSecondsLeft).toBe(1200);
  });

  it('keeps the stale status on a connection error', () => {
    const v = deriveView(makeStatus(), 'boom', opts());
    expect(v.state).toBe('ok');
    expect(v.connectionError).toBe('boom');
    expect(v.loading).toBe(false);
  });

  type Case = [string, IQCSStatus, number, string, boolean, string];
  const rt = (days_left: number | null, present = true) => ({
    refresh_token: refreshToken(days_left, present)
  });
  const cases: Case[] = [
    // name, status, elapsed s, state, usable, alert
    ['healthy', makeStatus(), 0, 'ok', true, 'none'],
    [
      'the server says the refresh token expires soon',
      makeStatus({
        ...rt(6.5),
        state: 'expiring',
        problems: [problem('refresh_token_expiring')]
      }),
      0,
      'expiring',
      true,
      'warning'
    ],
    [
      'few days left but the server is fine: not escalated',
      makeStatus(rt(6.5)),
      0,
      'ok',
      true,
      'none'
    ],
    [
      'refresh token runs out locally: the server decides, next answer',
      makeStatus(rt(0.0001)),
      60,
      'ok',
      true,
      'none'
    ],
    [
      'access token runs out without refresh token: not escalated',
      makeStatus(rt(null, false)),
      1300,
      'ok',
      true,
      'none'
    ],
    [
      'server expired is kept',
      makeStatus({ state: 'expired', usable: false }),
      0,
      'expired',
      false,
      'unusable'
    ],
    [
      'server expiring (e.g. renewal failing) warns, whatever the cause',
      makeStatus({ state: 'expiring' }),
      0,
      'expiring',
      true,
      'warning'
    ],
    [
      'server error',
      makeStatus({ state: 'error', usable: false }),
      0,
      'error',
      false,
      'unusable'
    ],
    [
      'missing',
      makeStatus({
        state: 'missing',
        usable: false,
        access_token: NO_ACCESS,
        refresh_token: NO_REFRESH
      }),
      0,
      'missing',
      false,
      'unusable'
    ],
    [
      'the Hub says the login ended, tokens still usable',
      withHub({ relogin_required: true }),
      0,
      'ok',
      true,
      'warning'
    ],
    [
      'not the owner: no notification',
      withHub({ owner: false }, { state: 'error', usable: false }),
      0,
      'error',
      false,
      'none'
    ],
    [
      'unknown state',
      makeStatus({ state: 'weird' as QCSState }),
      0,
      'error',
      true,
      'none'
    ]
  ];
  it.each(cases)('%s', (_name, status, elapsed, state, usable, alert) => {
    const v = deriveView(status, null, opts(elapsed));
    expect(v.state).toBe(state);
    expect(v.usable).toBe(usable);
    expect(v.alert).toBe(alert);
  });

  it('counts the access token down to "expired" without changing the state', () => {
    const v = deriveView(makeStatus(rt(null, false)), null, opts(1300));
    expect(v.accessValid).toBe(false);
    expect(v.state).toBe('ok');
  });

  it.each([
    ['healthy', [], 'ok'],
    ['expiring', [problem('refresh_token_expiring')], 'expiring'],
    ['expired', [problem('refresh_token_expired')], 'expired']
  ])(
    'colours the lifetime bar as the server rates it: %s',
    (_name, problems, level) => {
      const v = deriveView(makeStatus({ problems }), null, opts());
      expect(v.refreshLevel).toBe(level);
    }
  );

  it('offers the login URL to the owner only, when a login is due', () => {
    const due = withHub({ relogin_required: true });
    expect(deriveView(due, null, opts()).loginUrl).toBe(
      '/hub/oauth_login?next=%2Fuser%2Fada%2Flab'
    );
    expect(deriveView(due, null, opts()).relogin).toBe('required');
    const other = withHub({ relogin_required: true, owner: false });
    expect(deriveView(other, null, opts()).loginUrl).toBeNull();
    expect(deriveView(other, null, opts()).owner).toBe(false);
  });

  it('ages the refresh token locally', () => {
    const v = deriveView(makeStatus(), null, opts(86400));
    expect(v.refreshDaysLeft).toBeCloseTo(65.9);
    expect(v.refreshAgeDays).toBeCloseTo(24.1);
    expect(v.refreshLifetimeDays).toBe(90);
  });
});

describe('AlertTracker', () => {
  const view = (s: IQCSStatus | null, elapsed = 0): IQCSView =>
    deriveView(s, null, opts(elapsed));
  const missing = makeStatus({
    state: 'missing',
    usable: false,
    access_token: NO_ACCESS,
    refresh_token: NO_REFRESH
  });

  it('notifies once per transition', () => {
    const t = new AlertTracker();
    expect(t.update(view(makeStatus()))).toMatchObject({
      level: 'none',
      notify: false
    });
    expect(t.update(view(makeStatus()))).toBeNull();
    const warn = makeStatus({
      refresh_token: { ...makeStatus().refresh_token!, days_left: 3 },
      state: 'expiring',
      problems: [problem('refresh_token_expiring')]
    });
    expect(t.update(view(warn))).toMatchObject({
      previous: 'none',
      level: 'warning',
      notify: true
    });
    expect(t.update(view(warn, 10))).toBeNull();
    const bad = makeStatus({ state: 'error', usable: false });
    expect(t.update(view(bad))).toMatchObject({
      level: 'unusable',
      notify: true
    });
    expect(t.update(view(bad))).toBeNull();
    expect(t.update(view(makeStatus()))).toMatchObject({
      level: 'none',
      notify: false
    });
    expect(t.update(view(bad))).toMatchObject({
      level: 'unusable',
      notify: true
    });
  });

  it('ignores loading and unreachable views', () => {
    const t = new AlertTracker();
    t.update(view(makeStatus({ state: 'error', usable: false })));
    expect(t.update(deriveView(null, 'down', opts()))).toBeNull();
    expect(
      t.update(view(makeStatus({ state: 'error', usable: false })))
    ).toBeNull();
  });

  it('does not toast about absent credentials on page load', () => {
    const t = new AlertTracker();
    expect(t.update(view(missing))).toMatchObject({
      level: 'unusable',
      notify: false
    });
  });

  it('does toast when credentials disappear', () => {
    const t = new AlertTracker();
    t.update(view(makeStatus()));
    expect(t.update(view(missing))).toMatchObject({ notify: true });
  });

  it('toasts an already-expired state on page load', () => {
    const t = new AlertTracker();
    expect(
      t.update(view(makeStatus({ state: 'expired', usable: false })))
    ).toMatchObject({ level: 'unusable', notify: true });
  });
});

describe('settings sanitizers', () => {
  it.each([
    [undefined, 60],
    [NaN, 60],
    [5, 10],
    [10, 10],
    [300, 300]
  ])('pollInterval %s → %s', (value, expected) => {
    expect(sanitizePollInterval(value)).toBe(expected);
  });
});

function fakeApi(
  statuses: (IQCSStatus | Error)[],
  checks: (IQCSCheckResult | Error)[] = [checkResult()]
) {
  const calls = { status: 0, refresh: 0, restart: 0, check: 0 };
  const api: IQCSApi = {
    status: async () => {
      calls.status++;
      const next = statuses.length > 1 ? statuses.shift()! : statuses[0];
      if (next instanceof Error) {
        throw next;
      }
      return next;
    },
    refresh: async () => {
      calls.refresh++;
      return makeStatus({ checked_at: '2026-11-24T05:45:00Z' });
    },
    restart: async () => {
      calls.restart++;
      return { spawn_url: '/hub/spawn/ada' };
    },
    check: async () => {
      calls.check++;
      const next = checks.length > 1 ? checks.shift()! : checks[0];
      if (next instanceof Error) {
        throw next;
      }
      return next;
    }
  };
  return { api, calls };
}

describe('QCSModel', () => {
  let model: QCSModel | null = null;
  afterEach(() => {
    model?.dispose();
    model = null;
  });

  it('fetches on demand, derives, and signals', async () => {
    let now = T0;
    const { api, calls } = fakeApi([makeStatus()]);
    model = new QCSModel({
      api,
      autoStart: false,
      tickInterval: 0,
      now: () => now
    });
    const changes: string[] = [];
    model.changed.connect((_, v) => changes.push(v.state));
    expect(model.view.loading).toBe(true);
    await model.checkNow();
    expect(calls.status).toBe(1);
    expect(model.view.state).toBe('ok');
    expect(model.view.accessSecondsLeft).toBe(1200);
    expect(changes).toEqual(['ok']);
    now += 60_000;
    expect(model.canRestart).toBe(true);
    expect(model.canRefresh).toBe(true);
  });

  it('records a failed request and keeps the last status', async () => {
    const { api } = fakeApi([makeStatus(), new Error('Network down')]);
    model = new QCSModel({ api, autoStart: false, tickInterval: 0 });
    await model.checkNow();
    await model.checkNow();
    expect(model.view.connectionError).toBe('Network down');
    expect(model.view.state).toBe('ok');
    await model.checkNow();
    expect(model.view.connectionError).toBe('Network down');
  });

  it('emits alert transitions as the server answers change', async () => {
    const expiring = makeStatus({
      state: 'expiring',
      problems: [problem('refresh_token_expiring')]
    });
    const { api } = fakeApi([makeStatus(), expiring, expiring, makeStatus()]);
    model = new QCSModel({ api, autoStart: false, tickInterval: 0 });
    const alerts: string[] = [];
    model.alertChanged.connect((_, a) => alerts.push(`${a.level}:${a.notify}`));
    for (let i = 0; i < 4; i++) {
      await model.checkNow();
    }
    expect(alerts).toEqual(['none:false', 'warning:true', 'none:false']);
  });

  it('refreshes from the Hub', async () => {
    const { api, calls } = fakeApi([
      makeStatus({ state: 'expired', usable: false })
    ]);
    model = new QCSModel({ api, autoStart: false, tickInterval: 0 });
    await model.checkNow();
    expect(model.view.usable).toBe(false);
    const s = await model.refreshFromHub();
    expect(calls.refresh).toBe(1);
    expect(s.checked_at).toBe('2026-11-24T05:45:00Z');
    expect(model.view.usable).toBe(true);
    expect(model.refreshing).toBe(false);
  });

  it('offers no restart or refresh to a non-owner', async () => {
    const { api } = fakeApi([withHub({ owner: false })]);
    model = new QCSModel({ api, autoStart: false, tickInterval: 0 });
    await model.checkNow();
    expect(model.view.owner).toBe(false);
    expect(model.canRestart).toBe(false);
    expect(model.canRefresh).toBe(false);
  });

  it('offers no restart or refresh without the Hub', async () => {
    const { api } = fakeApi([
      makeStatus({
        hub: {
          available: false,
          last_sync: null,
          last_sync_error: null,
          refresh_available: false,
          restart_available: false,
          spawn_url: null,
          mode: null,
          reason: 'Not running under JupyterHub',
          login_url: null,
          relogin_required: false,
          owner: true
        }
      })
    ]);
    model = new QCSModel({ api, autoStart: false, tickInterval: 0 });
    await model.checkNow();
    expect(model.canRestart).toBe(false);
    expect(model.canRefresh).toBe(false);
  });

  it('polls by itself and ticks without requests', async () => {
    jest.useFakeTimers();
    try {
      const { api, calls } = fakeApi([makeStatus()]);
      model = new QCSModel({ api, pollInterval: 10, tickInterval: 1000 });
      let ticks = 0;
      model.ticked.connect(() => ticks++);
      await jest.advanceTimersByTimeAsync(100);
      expect(calls.status).toBe(1);
      await jest.advanceTimersByTimeAsync(5_000);
      expect(calls.status).toBe(1);
      expect(ticks).toBeGreaterThanOrEqual(5);
      await jest.advanceTimersByTimeAsync(5_000);
      expect(calls.status).toBe(2);
      model.pollInterval = 1; // clamped to the minimum of 10 s
      expect(model.pollInterval).toBe(10);
      model.dispose();
      await jest.advanceTimersByTimeAsync(60_000);
      expect(calls.status).toBe(2);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('QCSModel: Check with QCS', () => {
  let model: QCSModel | null = null;
  afterEach(() => {
    model?.dispose();
    model = null;
  });

  it('asks only when told, keeps the answer, and waits a few seconds before the next', async () => {
    let now = T0;
    const refused = checkResult({ outcome: 'refused', http_status: 401 });
    const { api, calls } = fakeApi([makeStatus()], [checkResult(), refused]);
    model = new QCSModel({
      api,
      autoStart: false,
      tickInterval: 0,
      now: () => now
    });
    await model.checkNow();
    expect(calls.check).toBe(0); // never automatic
    expect(model.canCheckQCS).toBe(true);
    const seen: boolean[] = [];
    model.changed.connect(m => seen.push(m.check.checking));
    const answer = await model.checkWithQCS();
    expect(answer?.outcome).toBe('accepted');
    expect(seen).toEqual([true, false]);
    expect(model.check.result?.processors).toBe(2);
    expect(model.canCheckQCS).toBe(false); // the server would refuse it too
    now += 5_000;
    expect(model.canCheckQCS).toBe(true);
    await model.checkWithQCS();
    expect(model.check.result?.outcome).toBe('refused');
    expect(calls.check).toBe(2);
  });

  it('keeps the last answer, says why a request failed, and waits as the server says', async () => {
    const tooSoon = Object.assign(
      new Error('Checked with QCS a moment ago; try again in 4 s.'),
      {
        response: new Response('{}', {
          status: 429,
          headers: { 'Retry-After': '4' }
        })
      }
    );
    const { api } = fakeApi([makeStatus()], [checkResult(), tooSoon]);
    let now = T0;
    model = new QCSModel({
      api,
      autoStart: false,
      tickInterval: 0,
      now: () => now
    });
    await model.checkNow();
    await model.checkWithQCS();
    now += 10_000;
    expect(await model.checkWithQCS()).toBeNull();
    expect(model.check.error).toContain('try again in 4 s');
    expect(model.check.result?.outcome).toBe('accepted');
    expect(model.canCheckQCS).toBe(false);
    now += 4_000;
    expect(model.canCheckQCS).toBe(true);
  });

  it.each([
    [new Error('Network down'), 0],
    [{ response: new Response('', { status: 500 }) }, 0],
    [{ response: new Response('', { status: 429 }) }, 5],
    [
      {
        response: new Response('', {
          status: 429,
          headers: { 'Retry-After': '3' }
        })
      },
      3
    ]
  ])('waits after a failure %#', (reason, seconds) => {
    expect(retryAfterS(reason)).toBe(seconds);
  });

  it('is not offered to a non-owner', async () => {
    const { api } = fakeApi([withHub({ owner: false })]);
    model = new QCSModel({ api, autoStart: false, tickInterval: 0 });
    await model.checkNow();
    expect(model.canCheckQCS).toBe(false);
  });
});
