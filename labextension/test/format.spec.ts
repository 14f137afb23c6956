import {
  alertMessage,
  asState,
  checkLabel,
  checkState,
  formatAge,
  formatCountdown,
  formatDaysLeft,
  formatDaysLeftOf,
  formatRelative,
  fractionLeft,
  parseTime,
  pathParts,
  shortPath,
  stateLabel
} from '../src/format';
import { AlertLevel, deriveView } from '../src/model';
import { IQCSStatus, QCS_STATES } from '../src/tokens';
import { makeStatus, problem, withHub } from './fixtures';
import { trans } from './trans';

describe('formatCountdown', () => {
  it.each([
    ['null', null, 'unknown'],
    ['NaN', NaN, 'unknown'],
    ['zero', 0, 'expired'],
    ['negative', -5, 'expired'],
    ['below one second floors to expired', 0.9, 'expired'],
    ['one second', 1, '1 s'],
    ['59.9 s floors', 59.9, '59 s'],
    ['one minute', 60, '1 min 00 s'],
    ['minutes pad seconds', 12 * 60 + 5, '12 min 05 s'],
    ['just under an hour', 3599, '59 min 59 s'],
    ['one hour', 3600, '1 h 00 min'],
    ['hours pad minutes', 3600 + 2 * 60 + 59, '1 h 02 min'],
    ['just under a day', 86399, '23 h 59 min'],
    ['days', 3 * 86400 + 4 * 3600 + 1, '3 d 04 h']
  ])('%s', (_name, seconds, expected) => {
    expect(formatCountdown(seconds as number | null, trans)).toBe(expected);
  });
});

describe('formatDaysLeft', () => {
  it.each([
    ['null', null, 'unknown'],
    ['zero', 0, 'expired'],
    ['negative', -1.5, 'expired'],
    ['hours', 0.2, 'less than a day left'],
    ['one day, singular', 1.4, '1 day left'],
    ['rounds to two', 1.6, '2 days left'],
    ['server 5.0 a moment later is still 5', 4.9999, '5 days left'],
    ['many days round', 66.9, '67 days left']
  ])('%s', (_name, days, expected) => {
    expect(formatDaysLeft(days as number | null, trans)).toBe(expected);
  });

  it('counts against the lifetime', () => {
    expect(formatDaysLeftOf(66.9, 90, trans)).toBe('67 of 90 days left');
    expect(formatDaysLeftOf(1.2, 90, trans)).toBe('1 of 90 day left');
    expect(formatDaysLeftOf(5, 90, trans)).toBe('5 of 90 days left');
    expect(formatDaysLeftOf(0.5, 90, trans)).toBe('less than a day left');
    expect(formatDaysLeftOf(30, null, trans)).toBe('30 days left');
  });
});

describe('formatAge', () => {
  it.each([
    [null, 'unknown age'],
    [0.3, 'less than a day old'],
    [1, '1 day old'],
    [23.1, '23 days old'],
    [84.6, '85 days old']
  ])('%s days', (days, expected) => {
    expect(formatAge(days as number | null, trans)).toBe(expected);
  });
});

describe('fractionLeft', () => {
  it.each([
    ['half', 45, 90, 0.5],
    ['clamped above', 120, 90, 1],
    ['clamped below', -3, 90, 0],
    ['unknown days', null, 90, 0],
    ['no lifetime', 10, 0, 0]
  ])('%s', (_name, days, lifetime, expected) => {
    expect(fractionLeft(days as number | null, lifetime as number)).toBe(
      expected
    );
  });
});

describe('states', () => {
  it.each([
    ['ok', 'OK'],
    ['expiring', 'Expiring soon'],
    ['expired', 'Expired'],
    ['error', 'Error'],
    ['missing', 'No credentials']
  ])('%s', (state, label) => {
    expect(stateLabel(state, trans)).toBe(label);
  });

  it('every known state has a label', () => {
    for (const state of QCS_STATES) {
      expect(stateLabel(state, trans)).not.toBe('Unknown');
    }
  });

  it('unknown states are errors', () => {
    expect(asState('weird')).toBe('error');
    expect(asState(null)).toBe('error');
    expect(asState('expiring')).toBe('expiring');
    expect(stateLabel('weird', trans)).toBe('Unknown');
  });
});

describe('alertMessage', () => {
  const expiring = (status: IQCSStatus): IQCSStatus => ({
    ...status,
    refresh_token: { ...status.refresh_token!, days_left: 4.2 },
    problems: [problem('refresh_token_expiring')]
  });
  const message = (status: IQCSStatus, level: AlertLevel) =>
    alertMessage(
      {
        previous: 'none',
        level,
        notify: true,
        view: deriveView(status, null, { receivedAt: 0, now: 0 })
      },
      trans
    );

  it.each([
    [
      'login ended',
      withHub({ relogin_required: true }),
      'warning',
      'Your QCS login has ended. Log in again to keep your credentials fresh.'
    ],
    [
      'expiring, with a Hub login',
      expiring(makeStatus()),
      'warning',
      'Your QCS refresh token expires soon (4 days left). Log in again before it does.'
    ],
    [
      'expiring, no Hub login',
      expiring(withHub({ login_url: null })),
      'warning',
      'Your QCS refresh token expires soon (4 days left). Get new credentials before it does.'
    ],
    [
      'unusable names the first problem',
      {
        ...makeStatus({ state: 'error', usable: false }),
        problems: [
          problem('file_corrupt', 'error', 'settings.toml is not valid TOML.')
        ]
      },
      'unusable',
      'Your QCS credentials are not usable: settings.toml is not valid TOML.'
    ],
    [
      'unusable without problems names the state',
      makeStatus({ state: 'expired', usable: false }),
      'unusable',
      'Your QCS credentials are not usable: Expired'
    ]
  ])('%s', (_name, status, level, expected) => {
    expect(message(status, level as AlertLevel)).toBe(expected);
  });
});

describe('time', () => {
  const now = Date.parse('2026-11-24T06:00:00Z');

  it('parses RFC 3339', () => {
    expect(parseTime('2026-11-24T06:00:00Z')).toBe(now);
    expect(parseTime('2026-11-23T18:46:01.920595156Z')).not.toBeNull();
    expect(parseTime('nonsense')).toBeNull();
    expect(parseTime(null)).toBeNull();
  });

  it.each([
    ['never', null, 'never'],
    ['just now', '2026-11-24T05:59:30Z', 'just now'],
    ['minutes', '2026-11-24T05:40:00Z', '20 min ago'],
    ['hours', '2026-11-24T01:00:00Z', '5 h ago'],
    ['days', '2026-11-21T06:00:00Z', '3 d ago'],
    ['future', '2026-11-24T06:00:30Z', 'in 30 s']
  ])('relative: %s', (_name, value, expected) => {
    expect(formatRelative(value as string | null, now, trans)).toBe(expected);
  });
});

describe('paths', () => {
  it.each([
    ['/home/ada/.qcs/settings.toml', '/home/ada', '~/.qcs/settings.toml'],
    ['/home/ada/.qcs/settings.toml', '/home/ada/', '~/.qcs/settings.toml'],
    [
      '/home/adam/.qcs/settings.toml',
      '/home/ada',
      '/home/adam/.qcs/settings.toml'
    ],
    ['/srv/qcs/settings.toml', '/home/ada', '/srv/qcs/settings.toml'],
    ['/home/ada/.qcs/settings.toml', null, '/home/ada/.qcs/settings.toml']
  ])('%s under %s shows as %s', (path, home, shown) => {
    expect(shortPath(path, home)).toBe(shown);
  });

  it('cuts only after a slash', () => {
    expect(pathParts('~/.qcs/settings.toml')).toEqual([
      '~/',
      '.qcs/',
      'settings.toml'
    ]);
    expect(pathParts('/tmp/ada-1x/')).toEqual(['/', 'tmp/', 'ada-1x/']);
    expect(pathParts('settings.toml')).toEqual(['settings.toml']);
    expect(pathParts('$QCS/x').join('')).toBe('$QCS/x');
  });
});

describe('check labels', () => {
  it.each([
    ['accepted', 'Accepted', 'ok'],
    ['refused', 'Refused', 'error'],
    ['forbidden', 'No access', 'error'],
    ['unreachable', 'Unreachable', 'expiring'],
    ['error', 'Unexpected answer', 'expiring'],
    ['not_checked', 'Not checked', 'missing']
  ] as const)('%s → %s (%s)', (outcome, label, state) => {
    expect(checkLabel(outcome, trans)).toBe(label);
    expect(checkState(outcome)).toBe(state);
  });
});
