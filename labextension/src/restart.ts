/**
 * "Restart server to refresh": ask the server to stop itself, wait until it is
 * gone, then let the Hub start a new one (which gets fresh credentials).
 *
 * A server cannot restart itself under JupyterHub (its API token dies with
 * it), so the browser must navigate to the Hub's spawn URL. Dependencies are
 * injected so the flow is testable without a browser.
 */
import { ITrans } from './format';
import { QCSModel } from './model';

export interface IWaitOptions {
  /** Give up after this many ms. Default 60 000. */
  timeoutMs?: number;
  /** Ask every this many ms. Default 1 000. */
  intervalMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) =>
  new Promise<void>(resolve => setTimeout(resolve, ms));

/**
 * Poll `ping` until it reports the server down. Resolves true when it went
 * down, false on timeout. Bounded by `timeoutMs`.
 */
export async function waitForServerStop(
  ping: () => Promise<boolean>,
  options: IWaitOptions = {}
): Promise<boolean> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const intervalMs = options.intervalMs ?? 1_000;
  const now = options.now ?? (() => Date.now());
  const sleep = options.sleep ?? defaultSleep;
  const deadline = now() + timeoutMs;
  for (;;) {
    if (!(await ping())) {
      return true;
    }
    if (now() >= deadline) {
      return false;
    }
    await sleep(intervalMs);
  }
}

/**
 * Accept a same-site path (`/hub/spawn/...`, not `//host`) or an http(s) URL;
 * anything else (e.g. `javascript:`) gives null.
 */
export function safeSpawnUrl(url: string | null | undefined): string | null {
  if (!url || typeof url !== 'string') {
    return null;
  }
  if (url.startsWith('/') && !url.startsWith('//')) {
    return url;
  }
  if (/^https?:\/\//i.test(url)) {
    return url;
  }
  return null;
}

export interface IRestartOptions extends IWaitOptions {
  model: QCSModel;
  trans: ITrans;
  /** Ask the user; resolve true to go ahead. */
  confirm: () => Promise<boolean>;
  /** Whether the server still answers (request.ts `pingServer`). */
  ping: () => Promise<boolean>;
  /** Go to the URL (`window.location.href = url`). */
  navigate: (url: string) => void;
  /** Where to go if the server names no spawn URL (e.g. the Hub's home). */
  fallbackUrl?: string | null;
}

export type RestartOutcome =
  | 'cancelled'
  | 'unavailable'
  | 'failed'
  | 'redirected'
  | 'redirected-after-timeout';

/** Run the whole flow; progress is shown through `model.restartPhase`. */
export async function restartServer(
  options: IRestartOptions
): Promise<RestartOutcome> {
  const { model, trans } = options;
  if (!model.canRestart) {
    return 'unavailable';
  }
  if (!(await options.confirm())) {
    return 'cancelled';
  }
  model.setRestartPhase('requesting', trans.__('Asking the server to stop…'));
  let spawnUrl: string | null;
  try {
    const reply = await model.requestRestart();
    spawnUrl =
      safeSpawnUrl(reply?.spawn_url) ??
      safeSpawnUrl(model.view.status?.hub?.spawn_url) ??
      safeSpawnUrl(options.fallbackUrl);
  } catch (reason) {
    const message = reason instanceof Error ? reason.message : String(reason);
    model.setRestartPhase(
      'failed',
      trans.__('The server refused to restart: %1', message)
    );
    return 'failed';
  }
  if (!spawnUrl) {
    model.setRestartPhase(
      'failed',
      trans.__('The server did not say where to start a new one.')
    );
    return 'failed';
  }
  // No more status requests to a server that is going away.
  await model.stop();
  model.setRestartPhase('stopping', trans.__('Stopping server…'));
  const stopped = await waitForServerStop(options.ping, options);
  model.setRestartPhase(
    'redirecting',
    stopped
      ? trans.__('Starting a new server…')
      : trans.__('The server is still up; going to the Hub anyway…')
  );
  options.navigate(spawnUrl);
  return stopped ? 'redirected' : 'redirected-after-timeout';
}
