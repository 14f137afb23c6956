/**
 * Small building blocks of the panel: a titled section, a label/value row,
 * server text with `code`.
 */
import * as React from 'react';

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
