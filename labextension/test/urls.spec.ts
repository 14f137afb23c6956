import { sameOriginPath, withNext } from '../src/urls';

describe('sameOriginPath', () => {
  it.each([
    '/hub/spawn/ada?next=%2Fuser%2Fada%2Flab',
    '/hub/spawn/ada/gpu?next=/user/ada/gpu/lab',
    '/hub/oauth_login?next=%2Fuser%2Fada%2Flab',
    '/',
    '/user/ada%2Fx/lab#frag'
  ])('accepts the same-origin path %s', url => {
    expect(sameOriginPath(url)).toBe(url);
  });

  it.each([
    ['an absolute https URL', 'https://hub.example.org/hub/spawn/ada'],
    ['an absolute http URL', 'http://127.0.0.1/hub/spawn/ada'],
    ['protocol-relative', '//evil.example.org/x'],
    ['slash-backslash', '/\\evil.example.org/x'],
    ['backslash-slash', '\\/evil.example.org'],
    ['backslash later', '/hub\\..\\x'],
    ['tab that the URL parser drops', '/\t/evil.example.org'],
    ['newline that the URL parser drops', '/\n/evil.example.org'],
    ['a space', '/hub/spawn/ada lovelace'],
    ['a NUL', '/hub\u0000'],
    ['javascript:', 'javascript:alert(1)'],
    ['data:', 'data:text/html,hi'],
    ['a relative path', 'hub/spawn/ada'],
    ['a dot path', './hub/spawn'],
    ['empty', ''],
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['an object', { toString: () => '/hub' }]
  ])('refuses %s', (_name, url) => {
    expect(sameOriginPath(url)).toBeNull();
  });
});

describe('withNext', () => {
  const login = '/hub/oauth_login?next=%2Fuser%2Fada%2Flab';
  it.each([
    ['/user/ada/tree', '/hub/oauth_login?next=%2Fuser%2Fada%2Ftree'],
    [
      '/user/ada/notebooks/a%20b.ipynb',
      '/hub/oauth_login?next=%2Fuser%2Fada%2Fnotebooks%2Fa%2520b.ipynb'
    ],
    ['/user/ada/lab?reset', '/hub/oauth_login?next=%2Fuser%2Fada%2Flab%3Freset']
  ])('comes back to %s', (here, expected) => {
    expect(withNext(login, here, '/user/ada/')).toBe(expected);
  });

  it.each([
    ['another server', '/user/bob/tree'],
    ['another origin', '//evil.example.org/user/ada/tree'],
    ['not a path', 'https://evil.example.org/user/ada/'],
    ['the Hub itself', '/hub/home']
  ])('keeps the URL for %s', (_, here) => {
    expect(withNext(login, here, '/user/ada/')).toBe(login);
  });

  it('leaves a URL without next, or one to another origin, as it is', () => {
    expect(withNext('/hub/home', '/user/ada/tree', '/user/ada/')).toBe(
      '/hub/home'
    );
    const evil = 'https://evil.example.org/?next=%2F';
    expect(withNext(evil, '/user/ada/tree', '/user/ada/')).toBe(evil);
  });
});
