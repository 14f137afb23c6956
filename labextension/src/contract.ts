/*
 * The wire types of GET qcs-jupyter/status (and POST qcs-jupyter/refresh), and
 * of POST qcs-jupyter/check.
 *
 * Generated from qcs_jupyter/credentials/status.schema.json, itself generated
 * from qcs_jupyter/credentials/contract.py, by
 * `python -m qcs_jupyter.credentials.schemagen`. Do not edit: change
 * contract.py and run the command again (a test fails on any drift).
 */

/**
 * The status of the QCS credentials for one profile: GET qcs-jupyter/status and
 * qcs-jupyter status --json.
 */
export interface IQCSStatus {
  /**
   * The profile shown: QCS_PROFILE_NAME, else default_profile_name, else
   * 'default'.
   */
  profile: string;
  /** The settings.toml the QCS clients read (null for a non-owner). */
  settings_path: string | null;
  /** The secrets.toml the QCS clients read (null for a non-owner). */
  secrets_path: string | null;
  /**
   * The home directory the paths are resolved against, to show them as ~/...
   * (null for a non-owner).
   */
  home_dir: string | null;
  /** Who the credentials belong to (all null for a non-owner). */
  identity: IQCSIdentity;
  /** The access token. */
  access_token: IQCSAccessToken;
  /** The refresh token. */
  refresh_token: IQCSRefreshToken;
  /** Where tokens are refreshed. */
  auth_server: IQCSAuthServer;
  /** The QCS client can get a valid access token from the files now. */
  usable: boolean;
  /** The overall state; the UI shows it as is. */
  state: QCSState;
  /** One sentence saying how things stand, for a status line. */
  summary: string;
  /** Every problem found, most important first. */
  problems: IQCSProblem[];
  /** When this status was computed (RFC 3339, UTC). */
  checked_at: string;
  /** The link to JupyterHub, or null outside JupyterHub and from the CLI. */
  hub: IQCSHubInfo | null;
}

/**
 * Who the credentials belong to, from the ID token's claims (read without
 * verification).
 */
export interface IQCSIdentity {
  /** The name (or preferred_username) claim. */
  name: string | null;
  /** The email claim. */
  email: string | null;
  /** The sub claim of the ID token, else of the access token. */
  subject: string | null;
}

/**
 * The access token in secrets.toml, as the QCS client judges it (its JWT exp).
 */
export interface IQCSAccessToken {
  /** secrets.toml holds an access token. */
  present: boolean;
  /** When it expires (RFC 3339, UTC), from its exp claim. */
  expires_at: string | null;
  /** Seconds from checked_at to expires_at (negative once expired). */
  expires_in_seconds: number | null;
  /** It has not expired at checked_at. */
  valid: boolean;
  /** Who renews it; null when nothing can. */
  renewed_by: QCSRenewer | null;
}

/**
 * The refresh token behind the credentials: its holder and its age against
 * QCS's 90-day limit.
 */
export interface IQCSRefreshToken {
  /** A refresh token exists, in the file or held by JupyterHub. */
  present: boolean;
  /** Who holds it. */
  held_by: QCSHolder | null;
  /**
   * secrets.toml holds a refresh token (with JupyterHub: the Hub's session
   * token).
   */
  in_file: boolean;
  /** When it was issued (RFC 3339), if known. */
  obtained_at: string | null;
  /** obtained_at is an estimate (the file's updated_at), not a record. */
  obtained_at_estimated: boolean;
  /** Its age in days at checked_at. */
  age_days: number | null;
  /** Days left until lifetime_days (negative once past). */
  days_left: number | null;
  /** How long QCS refresh tokens live (90). */
  lifetime_days: number;
}

/** The profile's [auth_servers.<name>] table: where tokens are refreshed. */
export interface IQCSAuthServer {
  /** The auth server's name (the profile's auth_server_name). */
  name: string;
  /**
   * The issuer URL; QCS's own when the table is absent; null when missing or
   * not a URL.
   */
  issuer: string | null;
  /**
   * The OAuth client id; QCS's own when the table is absent; null when missing.
   */
  client_id: string | null;
}

/** One problem, in plain words, with what to do about it. */
export interface IQCSProblem {
  /** What kind of problem it is. */
  code: QCSProblemCode;
  /** How bad it is. */
  severity: QCSSeverity;
  /** What is wrong, in a sentence; never a value from the files. */
  message: string;
  /** What to do about it. */
  action: string;
}

/**
 * The server's link to JupyterHub (filled in by the server extension; null from
 * the CLI).
 */
export interface IQCSHubInfo {
  /** The server runs under JupyterHub with qcs-jupyter's Hub side. */
  available: boolean;
  /** When credentials were last pulled from the Hub (RFC 3339). */
  last_sync: string | null;
  /** Why the last pull failed, or null. */
  last_sync_error: string | null;
  /** The caller may ask for a pull now (POST qcs-jupyter/refresh). */
  refresh_available: boolean;
  /** The caller may restart the server (POST qcs-jupyter/restart). */
  restart_available: boolean;
  /** Same-origin path that starts the server again after a restart. */
  spawn_url: string | null;
  /** "hub" when JupyterHub manages the credentials, else null. */
  mode: 'hub' | null;
  /** Why refresh/restart are not available, or null. */
  reason: string | null;
  /** Same-origin path to log in to JupyterHub again, or null. */
  login_url: string | null;
  /** The QCS login expired, was refused, or the user logged out. */
  relogin_required: boolean;
  /**
   * The caller owns this server; a non-owner gets no identity, paths, problems
   * or actions.
   */
  owner: boolean;
}

/**
 * The overall state, decided once on the Python side
 * (qcs_jupyter/credentials/status.py); the UI shows it as is.
 *
 * - `ok`: Usable, and either renewed automatically or valid for a while yet.
 * - `expiring`: Usable now, but something needs attention soon: the 90-day
 *   refresh horizon is near, renewal is failing, or the access token cannot be
 *   renewed and expires within 5 minutes.
 * - `expired`: The access token has expired; the QCS client will refresh it on
 *   next use, or JupyterHub renews it shortly.
 * - `error`: The QCS client cannot use the files as they are; a problem says
 *   what to do.
 * - `missing`: There are no credentials for the profile.
 */
export type QCSState = 'ok' | 'expiring' | 'expired' | 'error' | 'missing';

/** Every QCSState, in the contract's order. */
export const QCS_STATES: readonly QCSState[] = [
  'ok',
  'expiring',
  'expired',
  'error',
  'missing'
];

/**
 * How bad a problem is.
 *
 * - `error`: The credentials are, or will shortly be, unusable until the user
 *   acts.
 * - `warning`: Worth knowing; the credentials still work.
 */
export type QCSSeverity = 'error' | 'warning';

/** Every QCSSeverity, in the contract's order. */
export const QCS_SEVERITIES: readonly QCSSeverity[] = ['error', 'warning'];

/**
 * A stable machine-readable code for each problem (the message is for people
 * and may change).
 *
 * - `path_unresolvable`: QCS_SETTINGS_FILE_PATH or QCS_SECRETS_FILE_PATH names
 *   a path the QCS clients cannot resolve.
 * - `file_unreadable`: A file cannot be opened: a symbolic link, a directory, a
 *   FIFO, or no permission.
 * - `file_corrupt`: A file is not valid TOML or not UTF-8.
 * - `settings_missing`: settings.toml does not exist (the QCS clients need both
 *   files).
 * - `secrets_missing`: secrets.toml does not exist (the QCS clients need both
 *   files).
 * - `secrets_permissions`: secrets.toml can be read by other users.
 * - `profile_missing`: settings.toml has no table for the profile the clients
 *   load: they refuse the file.
 * - `auth_server_missing`: The profile names an [auth_servers.<name>] table
 *   that does not exist: the clients refuse the file.
 * - `auth_server_incomplete`: [auth_servers.<name>] lacks client_id or issuer,
 *   or one is not a string: the QCS clients refuse the file.
 * - `auth_server_invalid`: The issuer is not an http(s) URL, or client_id does
 *   not look like an OAuth client id: the QCS clients load the file, but
 *   refreshing fails.
 * - `issuer_trailing_slash`: The issuer ends with '/': refreshing fails (the
 *   discovery document's issuer differs).
 * - `credentials_missing`: secrets.toml has no
 *   [credentials.<name>.token_payload].
 * - `credentials_other_kind`: [credentials.<name>] holds client_credentials or
 *   externally_managed, not a token_payload.
 * - `token_field_type`: A token field (access_token, refresh_token, id_token,
 *   token_type, scope) is not a string: the QCS clients refuse the file.
 * - `expires_in_type`: expires_in is not an integer from 0 to 4294967295: the
 *   QCS clients refuse the file.
 * - `updated_at_type`: updated_at is a bare TOML date-time: the QCS clients
 *   need an RFC 3339 string.
 * - `updated_at_format`: updated_at is not an RFC 3339 time the QCS clients can
 *   read: they refuse the file.
 * - `access_token_missing`: There is no access token.
 * - `access_token_unreadable`: The access token is not a JWT or has no usable
 *   exp: the QCS clients treat it as expired.
 * - `access_token_expired`: The access token has expired.
 * - `access_token_implausible`: The access token claims to be valid for longer
 *   than any issuer grants: it was not issued by QCS, and the Hub's fresh
 *   tokens replace it.
 * - `refresh_token_missing`: Nothing can renew the access token when it
 *   expires.
 * - `refresh_token_expiring`: The refresh token (the QCS login) reaches its
 *   90-day limit soon.
 * - `refresh_token_expired`: The refresh token (the QCS login) is past its
 *   90-day limit.
 * - `hub_renewal_failing`: The server's last attempt to get fresh credentials
 *   from JupyterHub failed.
 * - `hub_relogin_required`: The QCS login at JupyterHub expired, was refused,
 *   or the user logged out: log in again.
 */
export type QCSProblemCode =
  | 'path_unresolvable'
  | 'file_unreadable'
  | 'file_corrupt'
  | 'settings_missing'
  | 'secrets_missing'
  | 'secrets_permissions'
  | 'profile_missing'
  | 'auth_server_missing'
  | 'auth_server_incomplete'
  | 'auth_server_invalid'
  | 'issuer_trailing_slash'
  | 'credentials_missing'
  | 'credentials_other_kind'
  | 'token_field_type'
  | 'expires_in_type'
  | 'updated_at_type'
  | 'updated_at_format'
  | 'access_token_missing'
  | 'access_token_unreadable'
  | 'access_token_expired'
  | 'access_token_implausible'
  | 'refresh_token_missing'
  | 'refresh_token_expiring'
  | 'refresh_token_expired'
  | 'hub_renewal_failing'
  | 'hub_relogin_required';

/** Every QCSProblemCode, in the contract's order. */
export const QCS_PROBLEM_CODES: readonly QCSProblemCode[] = [
  'path_unresolvable',
  'file_unreadable',
  'file_corrupt',
  'settings_missing',
  'secrets_missing',
  'secrets_permissions',
  'profile_missing',
  'auth_server_missing',
  'auth_server_incomplete',
  'auth_server_invalid',
  'issuer_trailing_slash',
  'credentials_missing',
  'credentials_other_kind',
  'token_field_type',
  'expires_in_type',
  'updated_at_type',
  'updated_at_format',
  'access_token_missing',
  'access_token_unreadable',
  'access_token_expired',
  'access_token_implausible',
  'refresh_token_missing',
  'refresh_token_expiring',
  'refresh_token_expired',
  'hub_renewal_failing',
  'hub_relogin_required'
];

/**
 * Who holds the refresh token that keeps the credentials alive.
 *
 * - `file`: secrets.toml holds it; the QCS client refreshes with it.
 * - `jupyterhub`: JupyterHub holds the real one; secrets.toml holds at most a
 *   session token that refreshes through the Hub.
 */
export type QCSHolder = 'file' | 'jupyterhub';

/** Every QCSHolder, in the contract's order. */
export const QCS_HOLDERS: readonly QCSHolder[] = ['file', 'jupyterhub'];

/**
 * Who renews the access token before or when it expires.
 *
 * - `jupyterhub`: The server extension rewrites secrets.toml with fresh tokens
 *   from JupyterHub.
 * - `client`: The QCS client refreshes it with the refresh token in
 *   secrets.toml when needed.
 */
export type QCSRenewer = 'jupyterhub' | 'client';

/** Every QCSRenewer, in the contract's order. */
export const QCS_RENEWERS: readonly QCSRenewer[] = ['jupyterhub', 'client'];

/**
 * The answer of QCS to what a QCS client asks first: one page of the quantum
 * processors the user can see.
 */
export interface IQCSCheckResult {
  /** What QCS answered. */
  outcome: QCSCheckOutcome;
  /**
   * What happened, in plain words; never a token or a value from QCS's answer.
   */
  message: string;
  /** What to do about it, or null when nothing is needed. */
  action: string | null;
  /** The profile whose access token was used. */
  profile: string;
  /**
   * The QCS API asked (the profile's api_url), or null when it is not a URL.
   */
  api_url: string | null;
  /** The HTTP status QCS answered, or null when it did not answer. */
  http_status: number | null;
  /** How many quantum processors the first page listed (accepted only). */
  processors: number | null;
  /** QCS has more processors than the first page listed. */
  more_processors: boolean;
  /** How long QCS took to answer, in milliseconds (null when not asked). */
  elapsed_ms: number | null;
  /** When QCS was asked (RFC 3339, UTC). */
  checked_at: string;
}

/**
 * What QCS answered when asked with the current access token (POST
 * qcs-jupyter/check, doctor --online).
 *
 * - `accepted`: QCS accepted the access token and listed the quantum processors
 *   the user can see.
 * - `refused`: QCS refused the access token (HTTP 401): log in again.
 * - `forbidden`: QCS knows the token, but the account lacks access (HTTP 403).
 * - `unreachable`: The QCS API could not be reached (network, DNS, TLS or
 *   timeout).
 * - `error`: The QCS API answered something else (another HTTP status, a
 *   redirect, not its JSON): see the message.
 * - `not_checked`: QCS was not asked: there is no unexpired access token, or
 *   the API URL is not an http(s) URL.
 */
export type QCSCheckOutcome =
  | 'accepted'
  | 'refused'
  | 'forbidden'
  | 'unreachable'
  | 'error'
  | 'not_checked';

/** Every QCSCheckOutcome, in the contract's order. */
export const QCS_CHECK_OUTCOMES: readonly QCSCheckOutcome[] = [
  'accepted',
  'refused',
  'forbidden',
  'unreachable',
  'error',
  'not_checked'
];
