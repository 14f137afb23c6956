import { HubInfo } from '../src/relogin';
import { IQCSStatus } from '../src/tokens';

/** A healthy status as the server extension sends it under a Hub. */
export function makeStatus(overrides: Partial<IQCSStatus> = {}): IQCSStatus {
  return {
    profile: 'default',
    settings_path: '~/.qcs/settings.toml',
    secrets_path: '~/.qcs/secrets.toml',
    identity: { name: 'Ada', email: 'ada@example.org', subject: 'ada' },
    access_token: {
      present: true,
      expires_at: '2026-11-24T06:00:00Z',
      expires_in_seconds: 1200,
      valid: true
    },
    refresh_token: {
      present: true,
      obtained_at: '2026-11-01T00:00:00Z',
      age_days: 23.1,
      days_left: 66.9,
      lifetime_days: 90
    },
    auth_server: { issuer: 'https://auth.example.org', client_id: 'abc' },
    usable: true,
    state: 'ok',
    problems: [],
    checked_at: '2026-11-24T05:40:00Z',
    hub: {
      available: true,
      last_sync: '2026-11-24T05:39:00Z',
      last_sync_error: null,
      refresh_available: true,
      restart_available: true,
      spawn_url: '/hub/spawn/ada?next=%2Fuser%2Fada%2Flab',
      reason: null,
      login_url: '/hub/oauth_login?next=%2Fuser%2Fada%2Flab',
      relogin_required: false,
      owner: true
    } as HubInfo,
    ...overrides
  };
}

/** A status whose `hub` has these fields changed. */
export function withHub(
  hub: Partial<HubInfo>,
  overrides: Partial<IQCSStatus> = {}
): IQCSStatus {
  const status = makeStatus(overrides);
  return { ...status, hub: { ...(status.hub as HubInfo), ...hub } as HubInfo };
}
