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
  export const checkQCS = 'qcs-jupyter:check-qcs';
}

/** Default settings; keep in step with schema/plugin.json. */
export const DEFAULT_POLL_INTERVAL_S = 60;
export const MIN_POLL_INTERVAL_S = 10;
export const DEFAULT_WARNING_DAYS = 7;

/** The server asks QCS at most once in this many seconds ("Check with QCS"). */
export const CHECK_MIN_INTERVAL_S = 5;

/*
 * The wire types of `GET qcs-jupyter/status` (IQCSStatus, IQCSHubInfo,
 * QCSState, QCSProblemCode, ...) are generated from the Python side's one
 * definition into contract.ts; they are re-exported here under the names the
 * rest of the extension imports.
 */
export * from './contract';

/** `POST qcs-jupyter/restart` (202). */
export interface IQCSRestartReply {
  spawn_url: string | null;
}
