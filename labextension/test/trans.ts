import { ITrans } from '../src/format';

/**
 * Like JupyterLab's nullTranslator (Gettext.strfmt): `%1`, `%2`, … are the
 * arguments; for `_n` the count itself is `%1`.
 */
function fill(msg: string, args: any[]): string {
  return msg.replace(/%(\d+)/g, (m, i) =>
    Number(i) - 1 < args.length ? String(args[Number(i) - 1]) : m
  );
}

export const trans: ITrans = {
  __: (msgid, ...args) => fill(msgid, args),
  _n: (single, plural, n, ...args) =>
    fill(n === 1 ? single : plural, [n, ...args])
};
