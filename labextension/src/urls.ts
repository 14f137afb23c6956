/**
 * Where the browser may be sent: only paths on this page's own origin.
 *
 * The server names the URLs (`hub.spawn_url`, `hub.login_url`); the panel
 * navigates to them. Accepting only a same-origin path means a wrong or
 * hostile value cannot send the user's browser to another site.
 */

/** A base that only serves to resolve paths; never requested. */
const PROBE_ORIGIN = 'http://origin.invalid';

/**
 * `url` if it is a path on this origin (`/hub/spawn/ada?next=…`), else null.
 *
 * Refused: absolute URLs (`https://…`, `javascript:`), protocol-relative
 * `//host`, `/\host` (browsers read `\` as `/`), relative paths, and any
 * whitespace or control character (the URL parser drops tabs and newlines,
 * so `/<TAB>/host` would become `//host`).
 */
export function sameOriginPath(url: unknown): string | null {
  if (typeof url !== 'string' || !/^\/(?![/\\])/.test(url)) {
    return null;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f\\]/.test(url)) {
    return null;
  }
  try {
    // Whatever the checks above missed, the browser's own parser decides.
    return new URL(url, PROBE_ORIGIN).origin === PROBE_ORIGIN ? url : null;
  } catch {
    return null;
  }
}

/**
 * `url` (a same-origin path the server named, e.g. the Hub's login or spawn
 * URL) with its `next` set to `here`, the page the user is on, so they come
 * back to it: `/tree` in Notebook 7, a notebook, JupyterLab. `here` must be a
 * same-origin path under `base` (this server's URL path); otherwise, or when
 * `url` has no `next`, `url` is returned as it is.
 */
export function withNext(url: string, here: string, base: string): string {
  const target = sameOriginPath(url);
  const page = sameOriginPath(here);
  if (!target || !page || !base.startsWith('/') || !page.startsWith(base)) {
    return url;
  }
  const parsed = new URL(target, PROBE_ORIGIN);
  if (!parsed.searchParams.has('next')) {
    return url;
  }
  parsed.searchParams.set('next', page);
  const result = parsed.pathname + parsed.search + parsed.hash;
  return sameOriginPath(result) ?? url;
}
