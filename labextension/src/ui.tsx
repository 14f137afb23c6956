/**
 * Small building blocks of the panel: a titled section, a label/value row,
 * server text with `code`, a file path with its copy button.
 */
import * as React from 'react';

import { pathParts, shortPath } from './format';

/** A panel section; `data-qcs-section` is its hook for browser tests. */
export function Section(props: {
  name: string;
  title: string;
  className?: string;
  children: React.ReactNode;
}): React.ReactElement {
  const className = props.className
    ? `qcs-jupyter-section ${props.className}`
    : 'qcs-jupyter-section';
  return (
    <section className={className} data-qcs-section={props.name}>
      <h3>{props.title}</h3>
      {props.children}
    </section>
  );
}

/** One label/value pair of a `<dl>`; `data-qcs-field` is the value's hook. */
export function Row(props: {
  label: string;
  field: string;
  children: React.ReactNode;
  title?: string;
}): React.ReactElement {
  return (
    <>
      <dt>{props.label}</dt>
      <dd data-qcs-field={props.field} title={props.title}>
        {props.children}
      </dd>
    </>
  );
}

/** Render `backticked` parts of server text as code. */
export function withCode(text: string): React.ReactNode[] {
  return text
    .split('`')
    .map((part, i) =>
      i % 2 === 1 ? <code key={i}>{part}</code> : <span key={i}>{part}</span>
    );
}

/** The value, or a dash for nothing. */
export function orDash(value: string | null | undefined): string {
  return value ? value : '—';
}

/**
 * A file path: short (`~/.qcs/settings.toml`), the full path on hover, and a
 * button that copies the full path. Lines break only after a `/`.
 */
export function PathValue(props: {
  path: string | null | undefined;
  home: string | null | undefined;
  /** What the path is, for the copy button's label ("settings.toml"). */
  name: string;
  /** Copy the full path; no button without it. */
  onCopy?: (path: string) => void;
  copyLabel: string;
  /** Said (and shown on the button) for a moment after a copy. */
  copiedLabel?: string;
}): React.ReactElement {
  const { path, onCopy } = props;
  // The answer to a copy stays here, beside the button: a toast would take the keyboard focus away when it closes.
  const [copied, setCopied] = React.useState(false);
  React.useEffect(() => {
    if (!copied) {
      return;
    }
    const timer = setTimeout(() => setCopied(false), 2000);
    return () => clearTimeout(timer);
  }, [copied]);
  if (!path) {
    return <>{orDash(path)}</>;
  }
  const label = copied
    ? (props.copiedLabel ?? props.copyLabel)
    : props.copyLabel;
  return (
    <span className="qcs-jupyter-path">
      <SlashBreaks text={shortPath(path, props.home)} title={path} />
      {onCopy && (
        <button
          type="button"
          className="qcs-jupyter-copy"
          data-qcs-action="copy-path"
          data-qcs-path={props.name}
          data-qcs-copied={copied ? 'true' : undefined}
          title={label}
          aria-label={label}
          onClick={() => {
            onCopy(path);
            setCopied(true);
          }}
        >
          {copied ? <CheckGlyph /> : <CopyGlyph />}
        </button>
      )}
      <span className="qcs-jupyter-sr-only" role="status">
        {copied ? props.copiedLabel : ''}
      </span>
    </span>
  );
}

/**
 * A path or URL as `code` that a line may break after a `/`, never inside a
 * name (only a single name wider than the panel wraps).
 */
export function SlashBreaks(props: {
  text: string;
  title?: string;
}): React.ReactElement {
  return (
    <code className="qcs-jupyter-path-text" title={props.title}>
      {pathParts(props.text).map((part, i) => (
        <React.Fragment key={i}>
          {i > 0 && <wbr />}
          <span className="qcs-jupyter-path-part">{part}</span>
        </React.Fragment>
      ))}
    </code>
  );
}

/** A tick: "copied". Decorative. */
function CheckGlyph(): React.ReactElement {
  return (
    <svg
      width="14"
      height="14"
      viewBox="0 0 16 16"
      aria-hidden="true"
      focusable="false"
    >
      <path
        fill="currentColor"
        d="M6.2 11.6 2.6 8l-1.4 1.4 5 5 8.6-8.6-1.4-1.4z"
      />
    </svg>
  );
}

/** Two overlapping sheets: "copy". Decorative; the button has the label. */
function CopyGlyph(): React.ReactElement {
  return (
    <svg
      width="14"
      height="14"
      viewBox="0 0 16 16"
      aria-hidden="true"
      focusable="false"
    >
      <path
        fill="currentColor"
        fillRule="evenodd"
        d="M5 1h8a2 2 0 0 1 2 2v8h-2V3H5V1zM1 5a2 2 0 0 1 2-2h7a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V5zm2 0v9h7V5H3z"
      />
    </svg>
  );
}
