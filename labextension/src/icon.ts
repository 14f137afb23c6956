import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A key with a qubit's ring: the sidebar tab icon. `jp-icon3` makes the
 * fill follow the theme (light and dark).
 */
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">
  <g class="jp-icon3" fill="#616161">
    <path d="M5 4a4 4 0 1 0 3.87 5H10v2h2V9h1v2h2V7H8.87A4 4 0 0 0 5 4zm0 2.2a1.8 1.8 0 1 1 0 3.6 1.8 1.8 0 0 1 0-3.6z"/>
  </g>
</svg>`;

export const qcsIcon = new LabIcon({ name: 'qcs-jupyter:key', svgstr });
