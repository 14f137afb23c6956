"""``qcs-jupyter``: show, install and check the QCS credentials in ``~/.qcs``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .credentials import (
    AuthServer,
    CredentialFileError,
    CredentialStore,
    StoreSnapshot,
    TokenInputError,
    TokenSet,
    compute_status,
    exit_code,
    read_status,
)
from .credentials.apicheck import check_with_qcs
from .credentials.contract import QCSCheckOutcome
from .credentials.sdkcheck import check_with_sdk
from .credentials.tokens import fingerprint

EXIT_OK, EXIT_UNUSABLE, EXIT_FILE_ERROR = 0, 1, 2


def _format_status(status: dict[str, Any]) -> str:
    """The status for people: one row per fact, then every problem with what to do."""
    ident, access, refresh = status["identity"], status["access_token"], status["refresh_token"]
    if access["present"]:
        access_text = f"{'valid' if access['valid'] else 'EXPIRED'}, expires {access['expires_at'] or 'unknown'}"
        if access["valid"] and access["expires_in_seconds"] is not None:
            access_text += f" (in {access['expires_in_seconds'] // 60} min)"
        access_text += {"jupyterhub": "; JupyterHub renews it", "client": "; the QCS client renews it"}.get(
            access["renewed_by"], ""
        )
    else:
        access_text = "none"
    if refresh["present"]:
        refresh_text = "held by JupyterHub" if refresh["held_by"] == "jupyterhub" else "in secrets.toml"
        if refresh["age_days"] is not None:
            refresh_text += f", {refresh['age_days']:.1f} days old, {max(refresh['days_left'], 0):.1f} of {refresh['lifetime_days']} days left"
            refresh_text += " (estimated)" if refresh["obtained_at_estimated"] else ""
    else:
        refresh_text = "none"
    rows = [
        ("State", f"{status['state']} ({'usable' if status['usable'] else 'NOT usable'}): {status['summary']}"),
        (
            "User",
            " ".join(x for x in (ident["name"], f"<{ident['email']}>" if ident["email"] else None) if x)
            or ident["subject"]
            or "unknown",
        ),
        ("Profile", status["profile"]),
        ("Access token", access_text),
        ("Refresh token", refresh_text),
        ("Issuer", status["auth_server"]["issuer"] or "missing or not shown"),
        ("Settings", status["settings_path"]),
        ("Secrets", status["secrets_path"]),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    for p in status["problems"]:
        lines.append(f"{p['severity'].upper()}: {p['message']}\n  → {p['action']}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    status = read_status(CredentialStore(profile=args.profile), warning_days=args.warning_days)
    print(json.dumps(status, indent=2) if args.json else _format_status(status))
    return exit_code(status)


def cmd_install(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.token_json == "-" else Path(args.token_json).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read {args.token_json}: {e}", file=sys.stderr)
        return EXIT_FILE_ERROR
    try:
        tokens = TokenSet.from_json(text)
    except TokenInputError as e:
        print(f"error: {args.token_json} is not a usable token response: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    if bool(args.issuer) != bool(args.client_id):
        print("error: --issuer and --client-id go together (the QCS client needs both)", file=sys.stderr)
        return EXIT_UNUSABLE
    for option, value in (("--issuer", args.issuer), ("--api-url", args.api_url)):
        if value is not None and not _is_http_url(value):
            print(f"error: {option} must be an http(s) URL such as https://api.qcs.rigetti.com", file=sys.stderr)
            return EXIT_UNUSABLE
    server = AuthServer(args.issuer, args.client_id) if args.issuer else None
    try:
        result = CredentialStore(profile=args.profile).install(tokens, auth_server=server, api_url=args.api_url)
    except CredentialFileError as e:
        print(f"error: {e.path} {e.message}.\n  → {e.action}", file=sys.stderr)
        return EXIT_FILE_ERROR
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.kept_newer:
        print(f"{result.secrets_path} already holds newer tokens for profile '{result.profile}'; kept them.")
    else:
        print(
            f"Installed credentials for profile '{result.profile}' into {result.settings_path} and {result.secrets_path}."
        )
    return EXIT_OK


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value)


def cmd_doctor(args: argparse.Namespace) -> int:
    store = CredentialStore(profile=args.profile)
    before = store.read()
    status = compute_status(before)
    print(_format_status(status))
    code = exit_code(status)
    sdk = check_with_sdk(before.profile, get_bearer_token=args.online)
    if not sdk["available"]:
        print(f"\nOfficial QCS client: not installed here; skipped ({sdk['error']}).")
    elif sdk["ok"]:
        print(f"\nOfficial QCS client: loads profile '{status['profile']}' (API {sdk['api_url']}).")
    else:
        print(f"\nOfficial QCS client: FAILED: {sdk['error']}")
        code = max(code, EXIT_UNUSABLE)
    if not args.online:
        return code

    # --online: what the client did for a bearer token, what QCS says of the token, and the status after both.
    after = store.read()
    print(f"\nToken: {_what_the_client_did(sdk, before, after)}")
    result = check_with_qcs(snapshot=after, hub=after.managed_by == "jupyterhub")
    took = f", {result.elapsed_ms} ms" if result.elapsed_ms is not None else ""
    print(f"Check with QCS ({result.api_url or 'no API URL'}{took}): {result.outcome.value}: {result.message}")
    if result.action:
        print(f"  → {result.action}")
    status = compute_status(after)
    print("\nStatus after these steps:")
    print(_format_status(status))
    code = exit_code(status)  # the files as they are now, and:
    if (sdk["available"] and not sdk["ok"]) or result.outcome is not QCSCheckOutcome.ACCEPTED:
        code = max(code, EXIT_UNUSABLE)
    return code


def _what_the_client_did(sdk: dict[str, Any], before: StoreSnapshot, after: StoreSnapshot) -> str:
    """Whether the client refreshed (the token it handed out against the file's, before and after)."""
    if not sdk["available"]:
        return "the official QCS client is not installed here, so nothing was refreshed; QCS is asked with the access token in secrets.toml as it is."
    if not sdk["ok"] or not sdk.get("bearer_token_obtained"):
        return "the official QCS client could not get a bearer token (see above); nothing was refreshed."
    used, was, now = sdk.get("bearer_token_fingerprint"), _access_fp(before), _access_fp(after)
    if used is not None and used == was:
        return "the QCS client used the access token already in secrets.toml (still valid): no refresh."
    if used is not None and used == now:
        return "the QCS client refreshed: it got a new access token from the issuer and wrote it to secrets.toml."
    if now != was:
        return "the access token in secrets.toml changed meanwhile (another refresher, e.g. JupyterHub, wrote it)."
    return (
        "the QCS client refreshed: it got a new access token from the issuer but did not write it to secrets.toml "
        "(QCS_SECRETS_READ_ONLY is set, or the file is read-only); QCS is asked with the token in the file."
    )


def _access_fp(snap: StoreSnapshot) -> str | None:
    token = (snap.token_payload or {}).get("access_token")
    return fingerprint(token) if isinstance(token, str) and token else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qcs-jupyter", description="Show, install and check the Rigetti QCS credentials in ~/.qcs."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    profile_help = (
        "QCS profile (default: $QCS_PROFILE_NAME, else default_profile_name in settings.toml, else 'default')"
    )

    p = sub.add_parser(
        "status", help="show the credentials' status; exit 0 usable, 1 not usable, 2 unreadable file or unusable path"
    )
    p.add_argument("--json", action="store_true", help="print JSON (the same shape the JupyterLab panel reads)")
    p.add_argument("--profile", help=profile_help)
    p.add_argument(
        "--warning-days", type=float, default=7, help="warn when the refresh token has fewer days left (default 7)"
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("install", help="install an OAuth token response (JSON) into ~/.qcs, keeping everything else")
    p.add_argument(
        "token_json",
        metavar="TOKEN_JSON",
        help="file with the token response from the QCS tokens page; '-' reads standard input",
    )
    p.add_argument("--profile", help=profile_help)
    p.add_argument("--issuer", help="OAuth issuer URL to record in [auth_servers.<profile>] (with --client-id)")
    p.add_argument("--client-id", help="OAuth client id to record in [auth_servers.<profile>] (with --issuer)")
    p.add_argument("--api-url", help="QCS API URL for the profile (default: keep, else https://api.qcs.rigetti.com)")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser(
        "doctor",
        help="check the files, also with the official QCS client when it is installed; --online also asks QCS",
    )
    p.add_argument("--profile", help=profile_help)
    p.add_argument(
        "--online",
        action="store_true",
        help="also ask the QCS client for a bearer token (it refreshes an expired one over the network and says "
        "so), then ask QCS whether it accepts the token (one page of your quantum processors), and show the "
        "status after both; exit 1 unless QCS accepted it",
    )
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
