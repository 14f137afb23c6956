/**
 * The "QCS credentials" sidebar panel: a `ReactWidget` that redraws
 * `PanelView` (view.tsx) on the model's signals.
 *
 * Stable hooks for browser tests: the widget node has class
 * `qcs-jupyter-panel`, `data-qcs-state` and `data-qcs-usable`.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { ITrans } from './format';
import { IQCSView, QCSModel } from './model';
import { PANEL_ID } from './tokens';
import { PanelView } from './view';

export interface IQCSPanelOptions {
  model: QCSModel;
  trans: ITrans;
  /** Run the restart flow (the `qcs-jupyter:restart` command). */
  onRestart: () => void;
  /** Pull from the Hub now (the `qcs-jupyter:refresh` command). */
  onRefresh: () => void;
  /** Go through the Hub's login and come back ("Log in again"). */
  onLogin: () => void;
  /** Ask QCS whether it accepts the token (the `qcs-jupyter:check-qcs` command). */
  onCheckQCS: () => void;
  /** Copy a full path to the clipboard. */
  onCopyPath: (path: string) => void;
}

export class QCSPanel extends ReactWidget {
  constructor(options: IQCSPanelOptions) {
    super();
    this._options = options;
    this.id = PANEL_ID;
    this.addClass('qcs-jupyter-panel');
    this.title.caption = options.trans.__('QCS credentials');
    // Focusable, not in the Tab order: opening the panel moves the keyboard focus into it.
    this.node.tabIndex = -1;
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', options.trans.__('QCS credentials'));
    const { model } = options;
    model.changed.connect(this._onChanged, this);
    model.ticked.connect(this._onTicked, this);
    this._syncNode(model.view);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._options.model.changed.disconnect(this._onChanged, this);
    this._options.model.ticked.disconnect(this._onTicked, this);
    super.dispose();
  }

  /** Opened from the status item or a command: the keyboard focus follows. */
  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    if (this.isAttached && !this.node.contains(document.activeElement)) {
      this.node.focus({ preventScroll: true });
    }
  }

  protected render(): React.ReactElement {
    const { model, trans, onRestart, onRefresh, onLogin } = this._options;
    const { onCheckQCS, onCopyPath } = this._options;
    return (
      <PanelView
        view={model.view}
        trans={trans}
        now={Date.now()}
        restartPhase={model.restartPhase}
        restartMessage={model.restartMessage}
        canRestart={model.canRestart}
        canRefresh={model.canRefresh}
        refreshing={model.refreshing}
        onRestart={onRestart}
        onRefresh={onRefresh}
        onCheck={() => void model.checkNow().catch(() => undefined)}
        onLogin={onLogin}
        qcsCheck={model.check}
        canCheckQCS={model.canCheckQCS}
        onCheckQCS={onCheckQCS}
        onCopyPath={onCopyPath}
      />
    );
  }

  private _onChanged(_: QCSModel, view: IQCSView): void {
    this._syncNode(view);
    this.update();
  }

  private _onTicked(): void {
    // Countdowns only; nothing to redraw while hidden.
    if (this.isVisible) {
      this.update();
    }
  }

  private _syncNode(view: IQCSView): void {
    this.node.dataset.qcsState = view.state;
    this.node.dataset.qcsUsable = String(view.usable);
  }

  private _options: IQCSPanelOptions;
}
