/**
 * Requests to the qcs-jupyter server extension (and the server itself).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IQCSApi } from './model';
import { classifyProbe, ServerProbe } from './restart';
import {
  API_NAMESPACE,
  IQCSCheckResult,
  IQCSRestartReply,
  IQCSStatus
} from './tokens';

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
      requestAPI<IQCSRestartReply>('restart', { method: 'POST' }, settings),
    check: () =>
      requestAPI<IQCSCheckResult>('check', { method: 'POST' }, settings)
  };
}

/**
 * `GET {baseUrl}qcs-jupyter/status` as a page request (`Accept: text/html`,
 * a path without an `api` segment): the running server answers JSON; once
 * it is gone the Hub answers as `classifyProbe` (restart.ts) reads. A GET
 * needs no XSRF token.
 */
export async function probeServer(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<ServerProbe> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, 'status');
  try {
    const response = await ServerConnection.makeRequest(
      url,
      { method: 'GET', cache: 'no-store', headers: { Accept: 'text/html' } },
      settings
    );
    // Drain the body so the connection is reused; its content does not matter.
    await response.text();
    return classifyProbe({
      status: response.status,
      redirected: response.redirected,
      json: (response.headers.get('Content-Type') ?? '').includes(
        'application/json'
      )
    });
  } catch {
    return classifyProbe(null);
  }
}
