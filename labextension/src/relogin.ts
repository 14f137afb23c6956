/**
 * "Log in again": when the QCS login behind this server has ended, or its
 * refresh token is close to QCS's 90 days, one click sends the browser
 * through the Hub's login (`hub.login_url`), which returns to JupyterLab; the
 * page then asks the server to pull the new tokens (`POST refresh`).
 *
 * Whether a login is due is the server's call (`hub.relogin_required`, and
 * its `refresh_token_*` problems, computed with its `warning_days`); nothing
 * here re-derives it.
 */
import { IQCSHubInfo, IQCSStatus } from './tokens';
import { sameOriginPath } from './urls';

/** The hub part of a status, if any. */
export function hubOf(status: IQCSStatus | null): IQCSHubInfo | null {
  return status?.hub ?? null;
}

/** Only an explicit `owner: false` hides; servers that do not say are the user's own. */
export function isOwner(status: IQCSStatus | null): boolean {
  return hubOf(status)?.owner !== false;
}

/** Why a new login is due: it is required now, or the refresh token expires soon. */
export type ReloginReason = 'required' | 'expiring';

/** The server's problem codes for a refresh token past, or near, its lifetime. */
export const REFRESH_EXPIRED = 'refresh_token_expired';
export const REFRESH_EXPIRING = 'refresh_token_expiring';

/** Whether the server reports a problem with this code. */
export function hasProblem(status: IQCSStatus, code: string): boolean {
  return (status.problems ?? []).some(p => p.code === code);
}

/** Whether (and why) the server says a new QCS login is due. */
export function reloginReason(status: IQCSStatus | null): ReloginReason | null {
  if (!status) {
    return null;
  }
  if (
    hubOf(status)?.relogin_required === true ||
    hasProblem(status, REFRESH_EXPIRED)
  ) {
    return 'required';
  }
  return hasProblem(status, REFRESH_EXPIRING) ? 'expiring' : null;
}

/** The validated login URL the owner may be sent to, or null. */
export function loginUrl(status: IQCSStatus | null): string | null {
  return isOwner(status) ? sameOriginPath(hubOf(status)?.login_url) : null;
}

/** The `sessionStorage` key that survives the login round trip in this tab. */
export const RELOGIN_MARK = 'qcs-jupyter:relogin-started';

/** A mark older than this is stale (the user wandered off mid-login). */
export const RELOGIN_MARK_MAX_AGE_MS = 15 * 60 * 1000;

/** The part of `Storage` used here. */
export interface IMarkStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface IReloginOptions {
  /** The status offering the login. */
  status: IQCSStatus | null;
  /** Where the mark is kept across the navigation (`window.sessionStorage`). */
  storage: IMarkStorage | null;
  /** Go to the URL (`window.location.assign`). */
  navigate: (url: string) => void;
  now?: () => number;
}

/**
 * Start a new login: mark it, then navigate to the Hub's login URL.
 * Returns false (and goes nowhere) without a valid same-origin URL.
 */
export function startRelogin(options: IReloginOptions): boolean {
  const url = loginUrl(options.status);
  if (!url) {
    return false;
  }
  const now = options.now ?? Date.now;
  try {
    options.storage?.setItem(RELOGIN_MARK, String(now()));
  } catch {
    // Storage may be disabled; the login still works, the refresh after it is then manual.
  }
  options.navigate(url);
  return true;
}

/**
 * Whether this page load is the return from a login this tab started.
 * Consumes the mark, so it is true at most once per login.
 */
export function takeReloginMark(
  storage: IMarkStorage | null,
  now: () => number = Date.now
): boolean {
  if (!storage) {
    return false;
  }
  try {
    const value = storage.getItem(RELOGIN_MARK);
    if (value === null) {
      return false;
    }
    storage.removeItem(RELOGIN_MARK);
    const age = now() - Number(value);
    return Number.isFinite(age) && age >= 0 && age <= RELOGIN_MARK_MAX_AGE_MS;
  } catch {
    return false;
  }
}
