import {
  IMarkStorage,
  isOwner,
  loginUrl,
  RELOGIN_MARK,
  RELOGIN_MARK_MAX_AGE_MS,
  reloginReason,
  startRelogin,
  takeReloginMark
} from '../src/relogin';
import { makeStatus, problem, refreshToken, withHub } from './fixtures';

describe('reloginReason: what the server says, not re-derived', () => {
  it.each([
    ['healthy', makeStatus(), null],
    [
      'the Hub says the login ended',
      withHub({ relogin_required: true }),
      'required'
    ],
    [
      'refresh token past its lifetime',
      makeStatus({ problems: [problem('refresh_token_expired')] }),
      'required'
    ],
    [
      'refresh token within warning_days',
      makeStatus({ problems: [problem('refresh_token_expiring')] }),
      'expiring'
    ],
    [
      'required wins over expiring',
      withHub(
        { relogin_required: true },
        { problems: [problem('refresh_token_expiring')] }
      ),
      'required'
    ],
    [
      'few days left but the server raised nothing: nothing',
      makeStatus({ refresh_token: refreshToken(1, true, 89) }),
      null
    ],
    ['no status', null, null]
  ])('%s', (_name, status, expected) => {
    expect(reloginReason(status)).toBe(expected);
  });
});

describe('loginUrl', () => {
  it('is the server-computed same-origin path', () => {
    const url = '/hub/oauth_login?next=%2Fuser%2Fada%2Flab';
    expect(loginUrl(withHub({ login_url: url }))).toBe(url);
  });

  it.each([
    ['absolute', 'https://hub.example.org/hub/oauth_login'],
    ['protocol-relative', '//evil.example.org/login'],
    ['slash-backslash', '/\\evil.example.org'],
    ['javascript', 'javascript:alert(1)'],
    ['missing', null]
  ])('refuses %s', (_name, url) => {
    expect(loginUrl(withHub({ login_url: url }))).toBeNull();
  });

  it('is never offered to a non-owner', () => {
    const status = withHub({ login_url: '/hub/oauth_login', owner: false });
    expect(isOwner(status)).toBe(false);
    expect(loginUrl(status)).toBeNull();
  });

  it('treats a server that does not say as the owner', () => {
    expect(isOwner(makeStatus())).toBe(true);
    expect(isOwner(null)).toBe(true);
  });
});

function memoryStorage(): IMarkStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: key => data.get(key) ?? null,
    setItem: (key, value) => void data.set(key, value),
    removeItem: key => void data.delete(key)
  };
}

describe('startRelogin and takeReloginMark', () => {
  const status = withHub({
    relogin_required: true,
    login_url: '/hub/oauth_login?next=%2Fuser%2Fada%2Flab'
  });

  it('marks the tab, navigates, and the mark is taken once on return', () => {
    const storage = memoryStorage();
    const went: string[] = [];
    const started = startRelogin({
      status,
      storage,
      navigate: url => went.push(url),
      now: () => 1_000
    });
    expect(started).toBe(true);
    expect(went).toEqual(['/hub/oauth_login?next=%2Fuser%2Fada%2Flab']);
    expect(storage.data.get(RELOGIN_MARK)).toBe('1000');
    expect(takeReloginMark(storage, () => 61_000)).toBe(true);
    expect(takeReloginMark(storage, () => 62_000)).toBe(false);
  });

  it('goes nowhere without a safe URL', () => {
    const storage = memoryStorage();
    const went: string[] = [];
    const started = startRelogin({
      status: withHub({ login_url: 'https://evil.example.org/' }),
      storage,
      navigate: url => went.push(url)
    });
    expect(started).toBe(false);
    expect(went).toEqual([]);
    expect(storage.data.size).toBe(0);
  });

  it('still logs in when storage refuses writes', () => {
    const went: string[] = [];
    const storage: IMarkStorage = {
      getItem: () => null,
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
      removeItem: () => undefined
    };
    expect(startRelogin({ status, storage, navigate: u => went.push(u) })).toBe(
      true
    );
    expect(went).toHaveLength(1);
  });

  it.each([
    ['stale', String(0), RELOGIN_MARK_MAX_AGE_MS + 1, false],
    ['just within', String(0), RELOGIN_MARK_MAX_AGE_MS, true],
    ['from the future', String(10_000), 0, false],
    ['garbage', 'x', 0, false]
  ])('a %s mark', (_name, value, now, expected) => {
    const storage = memoryStorage();
    storage.setItem(RELOGIN_MARK, value);
    expect(takeReloginMark(storage, () => now)).toBe(expected);
    expect(storage.data.has(RELOGIN_MARK)).toBe(false);
  });

  it('no storage, no mark', () => {
    expect(takeReloginMark(null)).toBe(false);
  });
});
