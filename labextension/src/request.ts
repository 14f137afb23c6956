/**
 * Requests to the qcs-jupyter server extension (and the server itself).
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IQCSApi } from './model';
import { API_NAMESPACE, IQCSRestartReply, IQCSStatus } from './tokens';

/**
 * Call `{baseUrl}qcs-jupyter/{endPoint}` and return the decoded JSON.
 *
 * ServerConnection adds the token / XSRF header for non-GET requests.
 * Throws `ServerConnection.NetworkError` when the server cannot be reached
 * and `ServerConnection.ResponseError` on a non-2xx answer.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON (e.g. a proxy's HTML error page); keep the text.
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data === 'object' && (data.message || data.reason)) ||
      `${response.status} ${response.statusText}`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

/** The real API of the server extension. */
export function createApi(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): IQCSApi {
  return {
    status: () => requestAPI<IQCSStatus>('status', { method: 'GET' }, settings),
    refresh: () =>
      requestAPI<IQCSStatus>('refresh', { method: 'POST' }, settings),
    restart: () =>
      requestAPI<IQCSRestartReply>('restart', { method: 'POST' }, settings)
  };
}

/**
 * Whether the Jupyter server still answers `GET {baseUrl}api/status`.
 *
 * Any failure counts as "down": a network error, or a non-2xx answer (under
 * JupyterHub the proxy routes a stopped server's URLs to the Hub, which does
 * not answer 200 with the server's JSON).
 */
export async function pingServer(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<boolean> {
  const url = URLExt.join(settings.baseUrl, 'api', 'status');
  try {
    const response = await ServerConnection.makeRequest(
      url,
      { method: 'GET', cache: 'no-store', redirect: 'manual' },
      settings
    );
    if (!response.ok) {
      return false;
    }
    await response.json();
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the Hub is still stopping this server. Reads the Hub's own
 * spawn-pending page (a same-origin GET that needs no XSRF token): it shows a
 * "refresh" control while the stop is pending and a "start" control once the
 * server is gone. Anything else (no Hub, an error) counts as "not stopping".
 */
export async function hubStopPending(): Promise<boolean> {
  const hubPrefix = PageConfig.getOption('hubPrefix');
  const user = PageConfig.getOption('hubUser');
  if (!hubPrefix || !user) {
    return false;
  }
  const server = PageConfig.getOption('hubServerName');
  const url = URLExt.join(
    hubPrefix,
    'spawn-pending',
    encodeURIComponent(user),
    server ? encodeURIComponent(server) : ''
  );
  try {
    const response = await fetch(url, {
      credentials: 'same-origin',
      cache: 'no-store'
    });
    const page = await response.text();
    return page.includes('id="refresh"') && !page.includes('id="start"');
  } catch {
    return false;
  }
}
