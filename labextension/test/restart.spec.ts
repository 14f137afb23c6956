import { IQCSApi, QCSModel } from '../src/model';
import { restartServer, safeSpawnUrl, waitForServerStop } from '../src/restart';
import { makeStatus } from './fixtures';
import { trans } from './trans';

describe('safeSpawnUrl', () => {
  it.each([
    ['/hub/spawn/ada?next=/user/ada/lab', '/hub/spawn/ada?next=/user/ada/lab'],
    [
      'https://hub.example.org/hub/spawn/ada',
      'https://hub.example.org/hub/spawn/ada'
    ],
    ['//evil.example.org/x', null],
    ['javascript:alert(1)', null],
    ['', null],
    [null, null]
  ])('%s', (url, expected) => {
    expect(safeSpawnUrl(url)).toBe(expected);
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
    restart
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

  it('falls back to the status spawn URL, and refuses unsafe ones', async () => {
    const model = await loaded(
      api(async () => ({ spawn_url: 'javascript:x' }))
    );
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
    expect(went).toBe('/hub/spawn/ada?next=/user/ada/lab');
    model.dispose();
  });
});
