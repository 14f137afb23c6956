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
import { sameOriginPath } from './urls';

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

/** What the server's own URL says while the Hub stops it. */
export type ServerProbe = 'up' | 'stopping' | 'stopped';

/** The parts of a probe's answer that decide; null: no answer at all. */
export interface IProbeAnswer {
  status: number;
  /** Whether fetch followed a redirect to get here. */
  redirected: boolean;
  /** Whether the body is JSON (Content-Type). */
  json: boolean;
}

/**
 * Read JupyterHub's answer for this server's URL.
 *
 * The Hub first removes the proxy route, then stops the server, then clears
 * "stop pending". Once the route is gone the request reaches the Hub
 * (`/user/…` → `/hub/user/…`), whose answer for a page (not an API path)
 * says where the stop is: 424 "server not running" once it is done, a
 * redirect to `spawn-pending` while it is pending. Starting a new server
 * before the stop is done would land on the Hub's "server is stopping" page.
 * JupyterHub has no cookie-authenticated API the page could ask without the
 * Hub's XSRF token, which a JupyterLab page does not have; these status codes
 * are the Hub's documented behaviour for a stopped server's URLs.
 */
export function classifyProbe(answer: IProbeAnswer | null): ServerProbe {
  if (answer === null) {
    return 'stopping'; // no answer: proxy or Hub between two states; ask again
  }
  if (answer.status === 424) {
    return 'stopped';
  }
  if (answer.status === 200 && !answer.redirected && answer.json) {
    return 'up';
  }
  return 'stopping'; // spawn-pending, the proxy's 503 for a dead target, …
}

/**
 * Poll `ping` until it reports the server gone (false). Resolves true when
 * it went, false on timeout. Bounded by `timeoutMs`.
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

export interface IRestartOptions extends IWaitOptions {
  model: QCSModel;
  trans: ITrans;
  /** Ask the user; resolve true to go ahead. */
  confirm: () => Promise<boolean>;
  /** Whether the server is still up or still stopping (request.ts `probeServer`). */
  ping: () => Promise<boolean>;
  /** Go to the URL (`window.location.href = url`). */
  navigate: (url: string) => void;
  /** Where to go if the server names no spawn URL (e.g. the Hub's home); same-origin paths only. */
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
      sameOriginPath(reply?.spawn_url) ??
      sameOriginPath(model.view.status?.hub?.spawn_url) ??
      sameOriginPath(options.fallbackUrl);
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
