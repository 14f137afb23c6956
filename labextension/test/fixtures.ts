import {
  IQCSAccessToken,
  IQCSCheckResult,
  IQCSHubInfo,
  IQCSProblem,
  IQCSRefreshToken,
  IQCSStatus,
  QCSProblemCode,
  QCSSeverity
} from '../src/tokens';

/* Statuses as the server extension sends them, typed by the status contract. */

/** The refresh token part, `days_left` days before its 90. */
export function refreshToken(
  days_left: number | null,
  present = true,
  age_days: number | null = null
): IQCSRefreshToken {
  return {
    present,
    held_by: present ? 'jupyterhub' : null,
    in_file: present,
    obtained_at: null,
    obtained_at_estimated: false,
    age_days,
    days_left,
    lifetime_days: 90
  };
}

/** No access token, as the server reports it. */
export const NO_ACCESS: IQCSAccessToken = {
  present: false,
  expires_at: null,
  expires_in_seconds: null,
  valid: false,
  renewed_by: null
};

/** No refresh token, as the server reports it. */
export const NO_REFRESH: IQCSRefreshToken = refreshToken(null, false);

/** A problem as the server reports it. */
export function problem(
  code: QCSProblemCode,
  severity: QCSSeverity = 'warning',
  message: string = code
): IQCSProblem {
  return { code, severity, message, action: '' };
}

/** A healthy status as the server extension sends it under a Hub. */
export function makeStatus(overrides: Partial<IQCSStatus> = {}): IQCSStatus {
  return {
    profile: 'default',
    settings_path: '/home/ada/.qcs/settings.toml',
    secrets_path: '/home/ada/.qcs/secrets.toml',
    home_dir: '/home/ada',
    identity: { name: 'Ada', email: 'ada@example.org', subject: 'ada' },
    access_token: {
      present: true,
      expires_at: '2026-11-24T06:00:00Z',
      expires_in_seconds: 1200,
      valid: true,
      renewed_by: 'jupyterhub'
    },
    refresh_token: {
      ...refreshToken(66.9, true, 23.1),
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
    },
    ...overrides
  };
}

/** A status whose `hub` has these fields changed. */
export function withHub(
  hub: Partial<IQCSHubInfo>,
  overrides: Partial<IQCSStatus> = {}
): IQCSStatus {
  const status = makeStatus(overrides);
  return { ...status, hub: { ...status.hub!, ...hub } };
}

/** A "Check with QCS" answer as the server sends it. */
export function checkResult(
  overrides: Partial<IQCSCheckResult> = {}
): IQCSCheckResult {
  return {
    outcome: 'accepted',
    message: 'QCS accepted your credentials: you can see 2 quantum processors.',
    action: null,
    profile: 'default',
    api_url: 'https://api.qcs.rigetti.com',
    http_status: 200,
    processors: 2,
    more_processors: false,
    elapsed_ms: 120,
    checked_at: '2026-11-24T05:40:00Z',
    ...overrides
  };
}
