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
