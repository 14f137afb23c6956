/**
 * The "QCS" status-bar item: a dot coloured by state; a click opens the panel.
 *
 * Browser tests: `.qcs-jupyter-status-item[data-qcs-state="ok"]` (also
 * `expiring`, `expired`, `error`, `missing`).
 */
import { Widget } from '@lumino/widgets';

import { formatCountdown, formatDaysLeft, ITrans, stateLabel } from './format';
import { IQCSView, QCSModel } from './model';

export interface IQCSStatusItemOptions {
  model: QCSModel;
  trans: ITrans;
  onClick: () => void;
}

export class QCSStatusItem extends Widget {
  constructor(options: IQCSStatusItemOptions) {
    super();
    this._options = options;
    this.addClass('qcs-jupyter-status-item');
    this.addClass('jp-mod-highlighted');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;

    const dot = document.createElement('span');
    dot.className = 'qcs-jupyter-status-dot';
    dot.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.className = 'qcs-jupyter-status-label';
    label.textContent = 'QCS';
    this.node.append(dot, label);

    this.node.addEventListener('click', this._onClick);
    this.node.addEventListener('keydown', this._onKeyDown);
    options.model.changed.connect(this._render, this);
    options.model.ticked.connect(this._render, this);
    this._render(options.model, options.model.view);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.node.removeEventListener('click', this._onClick);
    this.node.removeEventListener('keydown', this._onKeyDown);
    this._options.model.changed.disconnect(this._render, this);
    this._options.model.ticked.disconnect(this._render, this);
    super.dispose();
  }

  private _onClick = (): void => {
    this._options.onClick();
  };

  private _onKeyDown = (event: KeyboardEvent): void => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      this._options.onClick();
    }
  };

  /** Cheap: attributes and a tooltip only, no layout work. */
  private _render(_: QCSModel, view: IQCSView): void {
    const { trans } = this._options;
    this.node.dataset.qcsState = view.state;
    this.node.dataset.qcsUsable = String(view.usable);
    const title = statusTooltip(view, trans);
    if (this.node.title !== title) {
      this.node.title = title;
      this.node.setAttribute('aria-label', title);
    }
  }

  private _options: IQCSStatusItemOptions;
}

/** The tooltip: state, access-token countdown, refresh-token days left. */
export function statusTooltip(view: IQCSView, trans: ITrans): string {
  if (view.loading) {
    return trans.__('QCS credentials: checking…');
  }
  const parts = [
    trans.__('QCS credentials: %1', stateLabel(view.state, trans))
  ];
  if (view.connectionError !== null) {
    parts.push(trans.__('server extension unreachable'));
  }
  if (view.accessPresent) {
    parts.push(
      view.accessValid
        ? trans.__(
            'access token expires in %1',
            formatCountdown(view.accessSecondsLeft, trans)
          )
        : trans.__('access token expired')
    );
  }
  if (view.refreshPresent && view.refreshDaysLeft !== null) {
    parts.push(
      trans.__('refresh token: %1', formatDaysLeft(view.refreshDaysLeft, trans))
    );
  }
  return parts.join(' — ');
}
