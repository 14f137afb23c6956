/**
 * The credentials model: the latest status from the server extension, a
 * `Poll` that keeps it fresh, and a 1 s local clock for countdowns.
 *
 * The derivation (`deriveView`) and the notification bookkeeping
 * (`AlertTracker`) are pure and unit-tested (test/model.spec.ts). The model
 * talks to the server only through the `IQCSApi` it is given, so it can be
 * tested without a server.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { asState, parseTime } from './format';
import {
  hasProblem,
  isOwner,
  loginUrl,
  REFRESH_EXPIRED,
  REFRESH_EXPIRING,
  reloginReason,
  ReloginReason
} from './relogin';
import {
  CHECK_MIN_INTERVAL_S,
  DEFAULT_POLL_INTERVAL_S,
  IQCSCheckResult,
  IQCSRestartReply,
  IQCSStatus,
  MIN_POLL_INTERVAL_S,
  QCSState
} from './tokens';

/** What the model needs from the server (see request.ts for the real one). */
export interface IQCSApi {
  /** `GET qcs-jupyter/status`. */
  status(): Promise<IQCSStatus>;
  /** `POST qcs-jupyter/refresh`: pull fresh credentials from the Hub now. */
  refresh(): Promise<IQCSStatus>;
  /** `POST qcs-jupyter/restart`: the server stops itself shortly after. */
  restart(): Promise<IQCSRestartReply>;
  /** `POST qcs-jupyter/check`: ask QCS whether it accepts the access token. */
  check(): Promise<IQCSCheckResult>;
}

/** "Check with QCS": the last answer, or why there is none. */
export interface IQCSCheck {
  /** A request is on its way. */
  checking: boolean;
  /** The last answer the server gave (null before the first). */
  result: IQCSCheckResult | null;
  /** The last request failed (e.g. asked again too soon): why. */
  error: string | null;
  /**
   * Local epoch ms from which QCS may be asked again: a few seconds after an
   * answer, the server's `Retry-After` after a "too soon", at once after
   * other failures.
   */
  nextAt: number;
}

/** The notification level: once per transition into "warning"/"unusable". */
export type AlertLevel = 'none' | 'warning' | 'unusable';

/** Where the "Restart server to refresh" flow is. */
export type RestartPhase =
  'idle' | 'requesting' | 'stopping' | 'redirecting' | 'failed';

/** The status as the UI shows it at one instant. */
export interface IQCSView {
  /** The last status received, or null before the first answer. */
  status: IQCSStatus | null;
  /** No status yet and no error yet. */
  loading: boolean;
  /** The last request failed (message); the status, if any, is stale. */
  connectionError: string | null;
  /** The server's state (the server alone computes it). */
  state: QCSState;
  /** Whether the SDK can use the credentials, as the server says. */
  usable: boolean;
  /** Whether the caller owns this server (else: no identity, no actions). */
  owner: boolean;
  /** Whether an access token is present. */
  accessPresent: boolean;
  /** Seconds until the access token expires (may be negative), or null. */
  accessSecondsLeft: number | null;
  /** Valid per the server, and its countdown has not yet reached zero. */
  accessValid: boolean;
  /** Whether a refresh token is present. */
  refreshPresent: boolean;
  /** Days left of the refresh token's lifetime (may be negative), or null. */
  refreshDaysLeft: number | null;
  /** Age of the refresh token in days, or null. */
  refreshAgeDays: number | null;
  /** The refresh token's lifetime in days (default 90). */
  refreshLifetimeDays: number;
  /** The colour of the lifetime bar, from the server's refresh-token problems. */
  refreshLevel: QCSState;
  /** Whether (and why) the server says a new QCS login is due. */
  relogin: ReloginReason | null;
  /** The validated "Log in again" URL (owners only), or null. */
  loginUrl: string | null;
  /** The notification level. */
  alert: AlertLevel;
}

export interface IDeriveOptions {
  /** Local epoch ms when `status` was received. */
  receivedAt: number;
  /** Local epoch ms now. */
  now: number;
}

/** The lifetime assumed when the server does not say (QCS: 90 days). */
export const DEFAULT_REFRESH_LIFETIME_DAYS = 90;

/**
 * Derive what to show from a status and the local clock.
 *
 * The state, `usable` and whether a login is due are the server's; only the
 * countdowns run locally between two answers. They are anchored at the
 * moment the status arrived: with `expires_in_seconds` (the server's clock)
 * the time left is that minus the local time elapsed since, so a skewed
 * browser clock does not matter. Without it, `expires_at` is compared with
 * the local clock.
 */
export function deriveView(
  status: IQCSStatus | null,
  connectionError: string | null,
  options: IDeriveOptions
): IQCSView {
  const { receivedAt, now } = options;
  if (!status) {
    return {
      status: null,
      loading: connectionError === null,
      connectionError,
      state: connectionError === null ? 'missing' : 'error',
      usable: false,
      owner: true,
      accessPresent: false,
      accessSecondsLeft: null,
      accessValid: false,
      refreshPresent: false,
      refreshDaysLeft: null,
      refreshAgeDays: null,
      refreshLifetimeDays: DEFAULT_REFRESH_LIFETIME_DAYS,
      refreshLevel: 'missing',
      relogin: null,
      loginUrl: null,
      alert: 'none'
    };
  }
  const elapsedS = Math.max(0, now - receivedAt) / 1000;

  const at = status.access_token;
  const accessPresent = !!at?.present;
  let accessSecondsLeft: number | null = null;
  if (accessPresent && at) {
    if (typeof at.expires_in_seconds === 'number') {
      accessSecondsLeft = at.expires_in_seconds - elapsedS;
    } else {
      const exp = parseTime(at.expires_at);
      accessSecondsLeft = exp === null ? null : (exp - now) / 1000;
    }
  }
  const accessValid =
    accessPresent &&
    !!at?.valid &&
    (accessSecondsLeft === null || accessSecondsLeft > 0);

  const rt = status.refresh_token;
  const refreshPresent = !!rt?.present;
  const refreshLifetimeDays =
    typeof rt?.lifetime_days === 'number' && rt.lifetime_days > 0
      ? rt.lifetime_days
      : DEFAULT_REFRESH_LIFETIME_DAYS;
  const refreshDaysLeft =
    refreshPresent && typeof rt?.days_left === 'number'
      ? rt.days_left - elapsedS / 86400
      : null;
  const refreshAgeDays =
    refreshPresent && typeof rt?.age_days === 'number'
      ? rt.age_days + elapsedS / 86400
      : null;

  const state = asState(status.state);
  const usable = !!status.usable;
  const owner = isOwner(status);
  const relogin = reloginReason(status);
  let alert: AlertLevel = 'none';
  if (owner && !usable) {
    alert = 'unusable';
  } else if (owner && (relogin !== null || state === 'expiring')) {
    // The server's state says it all: "expiring" is failing renewal or a near 90-day horizon.
    alert = 'warning';
  }

  return {
    status,
    loading: false,
    connectionError,
    state,
    usable,
    owner,
    accessPresent,
    accessSecondsLeft,
    accessValid,
    refreshPresent,
    refreshDaysLeft,
    refreshAgeDays,
    refreshLifetimeDays,
    refreshLevel: refreshLevel(status, refreshDaysLeft),
    relogin,
    loginUrl: loginUrl(status),
    alert
  };
}

/** The lifetime bar's colour: what the server's problems say of the refresh token. */
function refreshLevel(status: IQCSStatus, daysLeft: number | null): QCSState {
  if (daysLeft === null) {
    return 'missing';
  }
  if (hasProblem(status, REFRESH_EXPIRED)) {
    return 'expired';
  }
  return hasProblem(status, REFRESH_EXPIRING) ? 'expiring' : 'ok';
}

/** A change of notification level, and whether to notify about it. */
export interface IAlertChange {
  previous: AlertLevel | null;
  level: AlertLevel;
  /** True once per transition into "warning" or "unusable". */
  notify: boolean;
  view: IQCSView;
}

/**
 * Turns a stream of views into at most one notification per transition.
 *
 * - Views without a status (loading, server unreachable) are ignored, so a
 *   server restart does not re-trigger notifications.
 * - The first status notifies if it is already "warning", or "unusable" for
 *   any reason other than "there are no credentials at all" (a user who does
 *   not use QCS should not get a toast on every page load; the status-bar item
 *   still shows it).
 * - Later, every change into "warning" or "unusable" notifies once.
 */
export class AlertTracker {
  get level(): AlertLevel | null {
    return this._level;
  }

  update(view: IQCSView): IAlertChange | null {
    if (!view.status) {
      return null;
    }
    const previous = this._level;
    const level = view.alert;
    if (previous === level) {
      return null;
    }
    this._level = level;
    let notify = level !== 'none';
    if (previous === null && level === 'unusable' && view.state === 'missing') {
      notify = false;
    }
    return { previous, level, notify, view };
  }

  private _level: AlertLevel | null = null;
}

export interface IQCSModelOptions {
  api: IQCSApi;
  /** Seconds between status requests (minimum 10). Default 60. */
  pollInterval?: number;
  /** Local clock tick in ms for countdowns; 0 disables. Default 1000. */
  tickInterval?: number;
  /** Start polling at once. Default true. */
  autoStart?: boolean;
  /** The clock (epoch ms); for tests. */
  now?: () => number;
}

/**
 * Holds the latest status and keeps it fresh.
 *
 * Requests: one `GET status` per `pollInterval` (default 60 s) while the page
 * is visible; none while it is hidden (`standby: 'when-hidden'`); exponential
 * backoff after failures. The 1 s tick only recomputes countdowns locally.
 */
export class QCSModel implements IDisposable {
  constructor(options: IQCSModelOptions) {
    this._api = options.api;
    this._now = options.now ?? (() => Date.now());
    this._pollInterval = sanitizePollInterval(options.pollInterval);
    this._view = this._derive();
    this._poll = new Poll<void, Error, 'standby'>({
      auto: options.autoStart ?? true,
      factory: () => this._fetch(),
      frequency: this._frequency(),
      name: 'qcs-jupyter:status',
      standby: 'when-hidden'
    });
    const tick = options.tickInterval ?? 1000;
    if (tick > 0) {
      this._timer = setInterval(() => this._onTick(), tick);
    }
  }

  /** The current view (recomputed on every status, setting change, tick). */
  get view(): IQCSView {
    return this._view;
  }

  /** Emitted when the status, the derived state, settings or restart phase change. */
  get changed(): ISignal<this, IQCSView> {
    return this._changed;
  }

  /** Emitted on every local clock tick (for countdowns; makes no request). */
  get ticked(): ISignal<this, IQCSView> {
    return this._ticked;
  }

  /** Emitted on a change of notification level. */
  get alertChanged(): ISignal<this, IAlertChange> {
    return this._alertChanged;
  }

  get pollInterval(): number {
    return this._pollInterval;
  }
  set pollInterval(seconds: number) {
    const value = sanitizePollInterval(seconds);
    if (value === this._pollInterval) {
      return;
    }
    this._pollInterval = value;
    this._poll.frequency = this._frequency();
    // A new frequency applies only from the next tick on: reschedule the pending one now.
    const phase = this._poll.state.phase;
    if (
      !this._poll.isDisposed &&
      phase !== 'constructed' &&
      phase !== 'stopped' &&
      phase !== 'standby'
    ) {
      void this._poll.schedule({
        interval: value * 1000,
        phase: 'reconnected'
      });
    }
  }

  get restartPhase(): RestartPhase {
    return this._restartPhase;
  }

  get restartMessage(): string {
    return this._restartMessage;
  }

  /** Set by the restart flow (restart.ts) so the panel can show progress. */
  setRestartPhase(phase: RestartPhase, message = ''): void {
    this._restartPhase = phase;
    this._restartMessage = message;
    this._update(true);
  }

  /** Whether "Restart server to refresh" can be offered now (owners only). */
  get canRestart(): boolean {
    const hub = this._view.status?.hub;
    return (
      this._view.owner &&
      !!hub?.restart_available &&
      this._restartPhase !== 'requesting' &&
      this._restartPhase !== 'stopping' &&
      this._restartPhase !== 'redirecting'
    );
  }

  /** Whether "Refresh now" (pull from the Hub) can be offered now (owners only). */
  get canRefresh(): boolean {
    return (
      this._view.owner &&
      !!this._view.status?.hub?.refresh_available &&
      !this._refreshing
    );
  }

  get refreshing(): boolean {
    return this._refreshing;
  }

  /** Ask the server for its status now; resolves after the answer. */
  async checkNow(): Promise<void> {
    await this._poll.refresh();
    await this._poll.tick;
  }

  /** `POST refresh`: pull credentials from the Hub now and show the result. */
  async refreshFromHub(): Promise<IQCSStatus> {
    this._refreshing = true;
    this._update(true);
    try {
      const status = await this._api.refresh();
      this.setStatus(status);
      return status;
    } finally {
      this._refreshing = false;
      this._update(true);
    }
  }

  /** `POST restart`. */
  requestRestart(): Promise<IQCSRestartReply> {
    return this._api.restart();
  }

  /** "Check with QCS": the last answer and whether one is on its way. */
  get check(): IQCSCheck {
    return this._check;
  }

  /**
   * Whether "Check with QCS" can be asked now (owners only): not while a
   * check runs, nor within `CHECK_MIN_INTERVAL_S` of the last one (the server
   * refuses those too).
   */
  get canCheckQCS(): boolean {
    return (
      this._view.owner &&
      this._view.status !== null &&
      !this._check.checking &&
      this._now() >= this._check.nextAt
    );
  }

  /**
   * `POST check`: ask QCS now. Only ever on the user's request. Resolves with
   * the answer, or null when the request failed (see `check.error`).
   */
  async checkWithQCS(): Promise<IQCSCheckResult | null> {
    if (this._check.checking) {
      return null;
    }
    this._check = { ...this._check, checking: true, error: null };
    this._update(true);
    try {
      const result = await this._api.check();
      this._check = {
        checking: false,
        result,
        error: null,
        nextAt: this._now() + CHECK_MIN_INTERVAL_S * 1000
      };
      return result;
    } catch (reason) {
      const error =
        reason instanceof Error ? reason.message : String(reason ?? 'error');
      this._check = {
        ...this._check,
        checking: false,
        error,
        nextAt: this._now() + retryAfterS(reason) * 1000
      };
      return null;
    } finally {
      this._update(true);
    }
  }

  /** Take a status (from the poll, or from a POST answer). */
  setStatus(status: IQCSStatus): void {
    this._status = status;
    this._receivedAt = this._now();
    this._error = null;
    this._update(true);
  }

  /** Stop polling and ticking (e.g. while the server restarts). */
  async stop(): Promise<void> {
    await this._poll.stop();
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
    // stop() clears the pending timeout synchronously; dispose() alone would
    // leave it to fire (harmlessly) up to one interval later.
    void this._poll.stop();
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    try {
      const status = await this._api.status();
      this.setStatus(status);
    } catch (reason) {
      this._error =
        reason instanceof Error ? reason.message : String(reason ?? 'error');
      this._update(true);
      throw reason;
    }
  }

  private _frequency() {
    const interval = this._pollInterval * 1000;
    return {
      interval,
      backoff: true,
      max: Math.max(interval, 5 * 60 * 1000)
    };
  }

  private _derive(): IQCSView {
    return deriveView(this._status, this._error, {
      receivedAt: this._receivedAt,
      now: this._now()
    });
  }

  private _onTick(): void {
    this._update(false);
    this._ticked.emit(this._view);
  }

  /**
   * Recompute the view. On a tick (`force` false) `changed` is emitted only
   * when something other than the countdowns changed.
   */
  private _update(force: boolean): void {
    if (this.isDisposed) {
      return;
    }
    const previous = this._view;
    this._view = this._derive();
    const changed =
      force ||
      previous.state !== this._view.state ||
      previous.usable !== this._view.usable ||
      previous.accessValid !== this._view.accessValid ||
      previous.alert !== this._view.alert;
    if (changed) {
      this._changed.emit(this._view);
    }
    const alert = this._tracker.update(this._view);
    if (alert) {
      this._alertChanged.emit(alert);
    }
  }

  private _api: IQCSApi;
  private _now: () => number;
  private _poll: Poll<void, Error, 'standby'>;
  private _timer: ReturnType<typeof setInterval> | null = null;
  private _status: IQCSStatus | null = null;
  private _receivedAt = 0;
  private _error: string | null = null;
  private _view: IQCSView;
  private _pollInterval: number;
  private _refreshing = false;
  private _restartPhase: RestartPhase = 'idle';
  private _restartMessage = '';
  private _check: IQCSCheck = {
    checking: false,
    result: null,
    error: null,
    nextAt: 0
  };
  private _tracker = new AlertTracker();
  private _changed = new Signal<this, IQCSView>(this);
  private _ticked = new Signal<this, IQCSView>(this);
  private _alertChanged = new Signal<this, IAlertChange>(this);
}

/** Clamp the poll interval to the schema's minimum (seconds). */
export function sanitizePollInterval(seconds: number | undefined): number {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
    return DEFAULT_POLL_INTERVAL_S;
  }
  return Math.max(MIN_POLL_INTERVAL_S, seconds);
}

/** Seconds a failed request says to wait (a 429's `Retry-After`), else 0. */
export function retryAfterS(reason: unknown): number {
  const response = (reason as { response?: Response } | null)?.response;
  if (!response || response.status !== 429) {
    return 0;
  }
  const value = Number(response.headers?.get('Retry-After'));
  return Number.isFinite(value) && value > 0
    ? Math.min(value, 60)
    : CHECK_MIN_INTERVAL_S;
}
