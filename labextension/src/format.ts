/**
 * Pure formatting helpers: countdowns, days left, ages, state labels, the
 * text of notifications.
 *
 * Nothing here touches the DOM or JupyterLab at run time, so it is unit-tested
 * in Node (test/format.spec.ts).
 */
import type { IAlertChange } from './model';
import { QCSCheckOutcome, QCSState, QCS_STATES } from './tokens';

/**
 * The part of `TranslationBundle` (from `@jupyterlab/translation`) used here.
 * Placeholders are `%1`, `%2`, … as with JupyterLab's `nullTranslator`.
 */
export interface ITrans {
  /** Placeholders `%1`, `%2`… are the arguments. */
  __(msgid: string, ...args: any[]): string;
  /** Placeholder `%1` is `n` itself; `%2`… are the further arguments. */
  _n(msgid: string, msgidPlural: string, n: number, ...args: any[]): string;
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Parse an RFC 3339 / ISO 8601 timestamp into epoch milliseconds, or null. */
export function parseTime(value: string | null | undefined): number | null {
  if (!value) {
    return null;
  }
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * A compact countdown: `45 s`, `12 min 05 s`, `1 h 02 min`, `3 d 04 h`.
 *
 * Zero or less gives "expired"; null/NaN gives "unknown". Seconds are floored,
 * so the display never claims more time than is left.
 */
export function formatCountdown(
  seconds: number | null | undefined,
  trans: ITrans
): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return trans.__('unknown');
  }
  const s = Math.floor(seconds);
  if (s <= 0) {
    return trans.__('expired');
  }
  if (s < MINUTE) {
    return trans.__('%1 s', s);
  }
  if (s < HOUR) {
    return trans.__('%1 min %2 s', Math.floor(s / MINUTE), pad2(s % MINUTE));
  }
  if (s < DAY) {
    return trans.__(
      '%1 h %2 min',
      Math.floor(s / HOUR),
      pad2(Math.floor((s % HOUR) / MINUTE))
    );
  }
  return trans.__(
    '%1 d %2 h',
    Math.floor(s / DAY),
    pad2(Math.floor((s % DAY) / HOUR))
  );
}

/**
 * "67 days left", "1 day left", "less than a day left", "expired".
 * Whole days are rounded (the server's 5.0 must not show as 4 a second later).
 */
export function formatDaysLeft(
  days: number | null | undefined,
  trans: ITrans
): string {
  if (days === null || days === undefined || !Number.isFinite(days)) {
    return trans.__('unknown');
  }
  if (days <= 0) {
    return trans.__('expired');
  }
  if (days < 1) {
    return trans.__('less than a day left');
  }
  const n = Math.round(days);
  return trans._n('%1 day left', '%1 days left', n);
}

/** "67 of 90 days left" (falls back to `formatDaysLeft` when not counting). */
export function formatDaysLeftOf(
  days: number | null | undefined,
  lifetime: number | null | undefined,
  trans: ITrans
): string {
  if (
    days === null ||
    days === undefined ||
    !Number.isFinite(days) ||
    days < 1 ||
    !lifetime ||
    !Number.isFinite(lifetime)
  ) {
    return formatDaysLeft(days, trans);
  }
  const n = Math.round(days);
  return trans._n(
    '%1 of %2 day left',
    '%1 of %2 days left',
    n,
    Math.round(lifetime)
  );
}

/** "less than a day old", "1 day old", "23 days old". */
export function formatAge(
  days: number | null | undefined,
  trans: ITrans
): string {
  if (days === null || days === undefined || !Number.isFinite(days)) {
    return trans.__('unknown age');
  }
  if (days < 1) {
    return trans.__('less than a day old');
  }
  const n = Math.round(days);
  return trans._n('%1 day old', '%1 days old', n);
}

/** The share of the refresh token's lifetime that is left, clamped to [0, 1]. */
export function fractionLeft(
  daysLeft: number | null | undefined,
  lifetime: number | null | undefined
): number {
  if (
    daysLeft === null ||
    daysLeft === undefined ||
    !Number.isFinite(daysLeft) ||
    !lifetime ||
    !Number.isFinite(lifetime) ||
    lifetime <= 0
  ) {
    return 0;
  }
  return Math.min(1, Math.max(0, daysLeft / lifetime));
}

/** Normalise an unknown state string from the server. */
export function asState(state: string | null | undefined): QCSState {
  return (QCS_STATES as readonly string[]).includes(state ?? '')
    ? (state as QCSState)
    : 'error';
}

/** A short human label for a state. */
export function stateLabel(state: string, trans: ITrans): string {
  switch (state) {
    case 'ok':
      return trans.__('OK');
    case 'expiring':
      return trans.__('Expiring soon');
    case 'expired':
      return trans.__('Expired');
    case 'error':
      return trans.__('Error');
    case 'missing':
      return trans.__('No credentials');
    default:
      return trans.__('Unknown');
  }
}

/**
 * A path as the user knows it: `~/.qcs/settings.toml` for one under their
 * home directory (the server says which), else as is.
 */
export function shortPath(
  path: string,
  home: string | null | undefined
): string {
  const base = home ? home.replace(/\/+$/, '') : '';
  if (base && path.startsWith(`${base}/`)) {
    return `~${path.slice(base.length)}`;
  }
  return path;
}

/**
 * A path cut after each `/`, each part keeping its slash: a line may break
 * between parts, never inside one (`~/`, `.qcs/`, `settings.toml`).
 */
export function pathParts(path: string): string[] {
  return path.match(/[^/]*\/|[^/]+$/g) ?? [path];
}

/** The short label of a "Check with QCS" answer. */
export function checkLabel(outcome: QCSCheckOutcome, trans: ITrans): string {
  switch (outcome) {
    case 'accepted':
      return trans.__('Accepted');
    case 'refused':
      return trans.__('Refused');
    case 'forbidden':
      return trans.__('No access');
    case 'unreachable':
      return trans.__('Unreachable');
    case 'error':
      return trans.__('Unexpected answer');
    default:
      return trans.__('Not checked');
  }
}

/** The colour of a "Check with QCS" answer, as one of the states' colours. */
export function checkState(outcome: QCSCheckOutcome): QCSState {
  switch (outcome) {
    case 'accepted':
      return 'ok';
    case 'refused':
    case 'forbidden':
      return 'error';
    case 'unreachable':
    case 'error':
      return 'expiring';
    default:
      return 'missing';
  }
}

/** "just now", "5 min ago", "3 h ago", "2 d ago"; "never" for null. */
export function formatRelative(
  value: string | null | undefined,
  nowMs: number,
  trans: ITrans
): string {
  const t = parseTime(value);
  if (t === null) {
    return value ? value : trans.__('never');
  }
  const s = Math.round((nowMs - t) / 1000);
  if (s < 0) {
    return trans.__('in %1', formatCountdown(-s, trans));
  }
  if (s < 45) {
    return trans.__('just now');
  }
  if (s < HOUR) {
    return trans.__('%1 min ago', Math.max(1, Math.round(s / MINUTE)));
  }
  if (s < DAY) {
    return trans.__('%1 h ago', Math.floor(s / HOUR));
  }
  return trans.__('%1 d ago', Math.floor(s / DAY));
}

/** A timestamp in the browser's locale, or the raw text if unparsable. */
export function formatDateTime(value: string | null | undefined): string {
  const t = parseTime(value);
  if (t === null) {
    return value ?? '';
  }
  return new Date(t).toLocaleString();
}

/** The first problem's message, if any. */
export function firstProblem(
  problems: { message: string }[] | null | undefined
): string | null {
  return problems && problems.length > 0 ? problems[0].message : null;
}

/** The text of a notification for a transition. */
export function alertMessage(change: IAlertChange, trans: ITrans): string {
  const { view } = change;
  if (change.level === 'warning' && view.relogin === 'required') {
    return trans.__(
      'Your QCS login has ended. Log in again to keep your credentials fresh.'
    );
  }
  if (change.level === 'warning') {
    const days = formatDaysLeft(view.refreshDaysLeft, trans);
    return view.loginUrl !== null
      ? trans.__(
          'Your QCS refresh token expires soon (%1). Log in again before it does.',
          days
        )
      : trans.__(
          'Your QCS refresh token expires soon (%1). Get new credentials before it does.',
          days
        );
  }
  return trans.__(
    'Your QCS credentials are not usable: %1',
    firstProblem(view.status?.problems) ?? stateLabel(view.state, trans)
  );
}
