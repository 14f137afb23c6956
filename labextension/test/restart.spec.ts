import { IQCSApi, QCSModel } from '../src/model';
import {
  classifyProbe,
  restartServer,
  waitForServerStop
} from '../src/restart';
import { makeStatus, withHub } from './fixtures';
import { trans } from './trans';

describe('classifyProbe: where the Hub is with the stop', () => {
  const answer = (status: number, redirected = false, json = false) => ({
    status,
    redirected,
    json
  });
  it.each([
    ['the server answers its JSON', answer(200, false, true), 'up'],
    ['no answer at all', null, 'stopping'],
    [
      'redirected to spawn-pending (stop pending)',
      answer(200, true, false),
      'stopping'
    ],
    ['a redirect that still ends in JSON', answer(200, true, true), 'stopping'],
    ['an HTML 200 (not the server)', answer(200, false, false), 'stopping'],
    [
      "the proxy's 503 for a dead target",
      answer(503, false, false),
      'stopping'
    ],
    ['the Hub: server not running', answer(424, true, false), 'stopped'],
    ['424 without a redirect', answer(424, false, true), 'stopped']
  ])('%s', (_name, a, expected) => {
    expect(classifyProbe(a)).toBe(expected);
  });
});

describe('waitForServerStop', () => {
  const clock = () => {
    let t = 0;
    return {
      now: () => t,
      sleep: async (ms: number) => {
        t += ms;
      }
    };
  };

  it('resolves once the server is gone', async () => {
    const answers = [true, true, false];
    let pings = 0;
    const ok = await waitForServerStop(async () => {
      pings++;
      return answers.shift()!;
    }, clock());
    expect(ok).toBe(true);
    expect(pings).toBe(3);
  });

  it('gives up after the timeout', async () => {
    let pings = 0;
    const ok = await waitForServerStop(
      async () => {
        pings++;
        return true;
      },
      { ...clock(), timeoutMs: 60_000, intervalMs: 1_000 }
    );
    expect(ok).toBe(false);
    expect(pings).toBe(61);
  });
});

describe('restartServer', () => {
  const api = (restart: IQCSApi['restart']): IQCSApi => ({
    status: async () => makeStatus(),
    refresh: async () => makeStatus(),
    restart,
    check: async () => {
      throw new Error('not asked here');
    }
  });
  const fast = { sleep: async () => undefined };

  async function loaded(a: IQCSApi) {
    const model = new QCSModel({ api: a, autoStart: false, tickInterval: 0 });
    await model.checkNow();
    return model;
  }

  it('confirms, stops, waits, then navigates to the spawn URL', async () => {
    const model = await loaded(
      api(async () => ({ spawn_url: '/hub/spawn/ada?next=/user/ada/lab' }))
    );
    const phases: string[] = [];
    model.changed.connect(m => phases.push(m.restartPhase));
    const pings = [true, false];
    let went = '';
    const outcome = await restartServer({
      model,
      trans,
      confirm: async () => true,
      ping: async () => pings.shift()!,
      navigate: url => {
        went = url;
      },
      ...fast
    });
    expect(outcome).toBe('redirected');
    expect(went).toBe('/hub/spawn/ada?next=/user/ada/lab');
    expect(phases).toEqual(['requesting', 'stopping', 'redirecting']);
    expect(model.restartMessage).toBe('Starting a new server…');
    model.dispose();
  });

  it('does nothing when cancelled', async () => {
    let asked = 0;
    const model = await loaded(
      api(async () => {
        asked++;
        return { spawn_url: '/x' };
      })
    );
    const outcome = await restartServer({
      model,
      trans,
      confirm: async () => false,
      ping: async () => false,
      navigate: () => undefined
    });
    expect(outcome).toBe('cancelled');
    expect(asked).toBe(0);
    expect(model.restartPhase).toBe('idle');
    model.dispose();
  });

  it('reports a refused restart', async () => {
    const model = await loaded(
      api(async () => {
        throw new Error('403 Forbidden');
      })
    );
    let went = false;
    const outcome = await restartServer({
      model,
      trans,
      confirm: async () => true,
      ping: async () => false,
      navigate: () => {
        went = true;
      }
    });
    expect(outcome).toBe('failed');
    expect(went).toBe(false);
    expect(model.restartPhase).toBe('failed');
    expect(model.restartMessage).toContain('403 Forbidden');
    expect(model.canRestart).toBe(true);
    model.dispose();
  });

  it.each([
    'javascript:x',
    'https://evil.example.org/hub/spawn/ada',
    '//evil.example.org/hub/spawn/ada',
    '/\\evil.example.org/hub/spawn/ada'
  ])(
    'refuses the spawn URL %s and falls back to the status one',
    async spawnUrl => {
      const model = await loaded(api(async () => ({ spawn_url: spawnUrl })));
      let went = '';
      await restartServer({
        model,
        trans,
        confirm: async () => true,
        ping: async () => false,
        navigate: url => {
          went = url;
        }
      });
      expect(went).toBe('/hub/spawn/ada?next=%2Fuser%2Fada%2Flab');
      model.dispose();
    }
  );

  it('fails rather than leave the origin', async () => {
    const a = api(async () => ({ spawn_url: 'https://evil.example.org/' }));
    a.status = async () =>
      withHub({ spawn_url: '//evil.example.org/hub/spawn/ada' });
    const model = await loaded(a);
    let went = false;
    const outcome = await restartServer({
      model,
      trans,
      confirm: async () => true,
      ping: async () => false,
      navigate: () => {
        went = true;
      },
      fallbackUrl: 'https://hub.example.org/hub/home'
    });
    expect(outcome).toBe('failed');
    expect(went).toBe(false);
    expect(model.restartMessage).toBe(
      'The server did not say where to start a new one.'
    );
    model.dispose();
  });

  it('offers no restart to a non-owner', async () => {
    let asked = 0;
    const a = api(async () => {
      asked++;
      return { spawn_url: '/x' };
    });
    a.status = async () => withHub({ owner: false });
    const model = await loaded(a);
    const outcome = await restartServer({
      model,
      trans,
      confirm: async () => true,
      ping: async () => false,
      navigate: () => undefined
    });
    expect(outcome).toBe('unavailable');
    expect(asked).toBe(0);
    model.dispose();
  });
});
