import { HubInfo } from '../src/relogin';
import { IQCSProblem, IQCSStatus } from '../src/tokens';

/*
 * Statuses as the server extension sends them. They carry every field of the
 * status contract, old and new, so they type-check while tokens.ts moves to
 * the generated contract.
 */

type RefreshToken = IQCSStatus['refresh_token'];
type AccessToken = IQCSStatus['access_token'];

/** The refresh token part, `days_left` days before its 90. */
export function refreshToken(
  days_left: number | null,
  present = true,
  age_days: number | null = null
): RefreshToken {
  return {
    present,
    held_by: present ? 'hub' : null,
    in_file: present,
    obtained_at: null,
    obtained_at_estimated: false,
    age_days,
    days_left,
    lifetime_days: 90
  } as unknown as RefreshToken;
}

/** No access token, as the server reports it. */
export const NO_ACCESS = {
  present: false,
  expires_at: null,
  expires_in_seconds: null,
  valid: false,
  renewed_by: null
} as unknown as AccessToken;

/** No refresh token, as the server reports it. */
export const NO_REFRESH = refreshToken(null, false);

/** A problem as the server reports it. */
export function problem(
  code: string,
  severity = 'warning',
  message: string = code
): IQCSProblem {
  return { code, severity, message, action: '' } as unknown as IQCSProblem;
}

/** A state string the contract may not know (the UI must cope). */
export function anyState(state: string): IQCSStatus['state'] {
  return state as IQCSStatus['state'];
}

/** A healthy status as the server extension sends it under a Hub. */
export function makeStatus(overrides: Partial<IQCSStatus> = {}): IQCSStatus {
  const status = {
    profile: 'default',
    settings_path: '~/.qcs/settings.toml',
    secrets_path: '~/.qcs/secrets.toml',
    identity: { name: 'Ada', email: 'ada@example.org', subject: 'ada' },
    access_token: {
      present: true,
      expires_at: '2026-11-24T06:00:00Z',
      expires_in_seconds: 1200,
      valid: true,
      renewed_by: 'hub'
    },
    refresh_token: {
      ...(refreshToken(66.9, true, 23.1) as object),
      obtained_at: '2026-11-01T00:00:00Z'
    },
    auth_server: {
      name: 'default',
      issuer: 'https://auth.example.org',
      client_id: 'abc'
    },
    usable: true,
    state: 'ok',
    summary: 'The QCS credentials are usable.',
    problems: [],
    checked_at: '2026-11-24T05:40:00Z',
    hub: {
      available: true,
      last_sync: '2026-11-24T05:39:00Z',
      last_sync_error: null,
      refresh_available: true,
      restart_available: true,
      spawn_url: '/hub/spawn/ada?next=%2Fuser%2Fada%2Flab',
      mode: 'hub',
      reason: null,
      login_url: '/hub/oauth_login?next=%2Fuser%2Fada%2Flab',
      relogin_required: false,
      owner: true
    }
  };
  return { ...(status as unknown as IQCSStatus), ...overrides };
}

/** A status whose `hub` has these fields changed. */
export function withHub(
  hub: Partial<HubInfo>,
  overrides: Partial<IQCSStatus> = {}
): IQCSStatus {
  const status = makeStatus(overrides);
  return { ...status, hub: { ...(status.hub as HubInfo), ...hub } as HubInfo };
}
