/**
 * Identifiers and the wire types of the qcs-jupyter REST API.
 *
 * This module holds no runtime dependencies on JupyterLab so that the pure
 * logic (format.ts, the model's derivation) can be unit-tested in Node.
 */

/** The id of the plugin; also the key of its settings (schema/plugin.json). */
export const PLUGIN_ID = 'qcs-jupyter:plugin';

/** The id of the sidebar panel widget (also its DOM id). */
export const PANEL_ID = 'qcs-jupyter-panel';

/** The id of the status-bar item. */
export const STATUS_ITEM_ID = 'qcs-jupyter:status';

/** The URL namespace of the server extension, relative to the server's base URL. */
export const API_NAMESPACE = 'qcs-jupyter';

/** The translation domain of the extension's strings. */
export const TRANSLATION_DOMAIN = 'qcs_jupyter';

/** The command palette category. */
export const COMMAND_CATEGORY = 'QCS';

export namespace CommandIDs {
  export const open = 'qcs-jupyter:open';
  export const restart = 'qcs-jupyter:restart';
  export const refresh = 'qcs-jupyter:refresh';
}

/** Default settings; keep in step with schema/plugin.json. */
export const DEFAULT_POLL_INTERVAL_S = 60;
export const MIN_POLL_INTERVAL_S = 10;
export const DEFAULT_WARNING_DAYS = 7;

/** The overall state reported by the server (`state`). */
export type QCSState = 'ok' | 'expiring' | 'expired' | 'error' | 'missing';

export const QCS_STATES: readonly QCSState[] = [
  'ok',
  'expiring',
  'expired',
  'error',
  'missing'
];

export interface IQCSIdentity {
  name: string | null;
  email: string | null;
  subject: string | null;
}

export interface IQCSAccessToken {
  present: boolean;
  expires_at: string | null;
  expires_in_seconds: number | null;
  valid: boolean;
}

export interface IQCSRefreshToken {
  present: boolean;
  obtained_at: string | null;
  age_days: number | null;
  days_left: number | null;
  lifetime_days: number | null;
}

export interface IQCSAuthServer {
  issuer: string | null;
  client_id: string | null;
}

export type QCSSeverity = 'info' | 'warning' | 'error';

export interface IQCSProblem {
  code: string;
  severity: QCSSeverity | string;
  message: string;
  action?: string | null;
}

export interface IQCSHubInfo {
  available: boolean;
  last_sync: string | null;
  last_sync_error: string | null;
  refresh_available: boolean;
  restart_available: boolean;
  spawn_url: string | null;
  reason: string | null;
}

/** `GET qcs-jupyter/status` (and `POST qcs-jupyter/refresh`). */
export interface IQCSStatus {
  profile: string | null;
  settings_path: string | null;
  secrets_path: string | null;
  identity: IQCSIdentity | null;
  access_token: IQCSAccessToken | null;
  refresh_token: IQCSRefreshToken | null;
  auth_server: IQCSAuthServer | null;
  usable: boolean;
  state: QCSState | string;
  problems: IQCSProblem[];
  checked_at: string | null;
  hub: IQCSHubInfo | null;
}

/** `POST qcs-jupyter/restart` (202). */
export interface IQCSRestartReply {
  spawn_url: string | null;
}
