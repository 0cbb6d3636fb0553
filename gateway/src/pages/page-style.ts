/**
 * The pages' stylesheet and icon, served at /assets/bamba.css and /assets/favicon.svg (no inline styles: the pages' Content
 * Security Policy allows only this origin's files). Dark text on light backgrounds with a
 * contrast ratio of at least 4.5:1; a visible focus ring; one column on phone-sized windows.
 */
export const PAGE_STYLE = `
:root { --text: #1b1f24; --muted: #4d5560; --line: #c9ced6; --surface: #ffffff; --panel: #f3f5f8; --accent: #0b57d0; --accent-text: #ffffff; --danger: #a40e26; --ok: #0d6b36; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--text); background: var(--surface); display: flex; flex-direction: column; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
header { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: center; padding: 0.6rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 1.15rem; margin: 0 auto 0 0; }
header label { display: flex; gap: 0.4rem; align-items: center; }
button, select, input, textarea { font: inherit; color: inherit; }
button { cursor: pointer; border: 1px solid var(--line); background: var(--surface); border-radius: 6px; padding: 0.35rem 0.8rem; }
button.primary { background: var(--accent); color: var(--accent-text); border-color: var(--accent); }
button:disabled { opacity: 0.6; cursor: default; }
select, input, textarea { border: 1px solid var(--muted); border-radius: 6px; padding: 0.35rem 0.5rem; background: var(--surface); }
.layout { flex: 1; display: grid; grid-template-columns: 16rem 1fr; min-height: 0; }
aside { border-right: 1px solid var(--line); padding: 0.75rem; overflow-y: auto; background: var(--panel); }
aside h2 { font-size: 1rem; margin: 0 0 0.5rem; }
#session-list { list-style: none; padding: 0; margin: 0.75rem 0 0; display: flex; flex-direction: column; gap: 0.25rem; }
.session { display: flex; gap: 0.25rem; }
.session-open { flex: 1; text-align: left; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.session.current .session-open { border-color: var(--accent); font-weight: 600; }
.session-delete { padding: 0.35rem 0.6rem; color: var(--danger); }
main { display: flex; flex-direction: column; min-height: 0; padding: 0.75rem 1rem; gap: 0.75rem; overflow-y: auto; }
main h2 { font-size: 1rem; margin: 0; }
#transcript { list-style: none; padding: 0; margin: 0; display: flex; flex-direction: column; gap: 0.75rem; flex: 1; }
.message { border: 1px solid var(--line); border-radius: 8px; padding: 0.5rem 0.75rem; max-width: 60rem; }
.message-user { background: var(--panel); align-self: flex-end; }
.message-system { font-style: italic; }
.role { display: block; font-size: 0.8rem; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.content { white-space: pre-wrap; overflow-wrap: anywhere; }
.streaming .content::after { content: "▍"; }
.stats { font-size: 0.85rem; color: var(--muted); margin: 0.4rem 0 0.2rem; }
.badge { display: inline-block; border-radius: 999px; padding: 0 0.55rem; font-weight: 600; color: #ffffff; background: #4d5560; }
.badge-resident { background: var(--ok); }
.badge-host { background: #00658f; }
.badge-snapshot { background: var(--accent); }
.badge-replay { background: #8a4b00; }
.link-button { border: none; background: none; color: var(--accent); padding: 0; text-decoration: underline; font-size: 0.85rem; }
.hint { color: var(--muted); }
.system-field { display: flex; flex-direction: column; gap: 0.25rem; font-size: 0.85rem; color: var(--muted); max-width: 40rem; }
.system-field[hidden] { display: none; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
#error, .warning { color: var(--danger); border: 1px solid var(--danger); border-radius: 6px; padding: 0.5rem 0.75rem; }
#composer { display: flex; gap: 0.5rem; align-items: flex-end; flex-wrap: wrap; }
#composer textarea { flex: 1 1 20rem; min-height: 3rem; resize: vertical; }
#composer label { display: flex; flex-direction: column; font-size: 0.85rem; color: var(--muted); }
#composer input { width: 6rem; }
dialog { border: 1px solid var(--line); border-radius: 8px; max-width: 28rem; }
dialog form { display: flex; flex-direction: column; gap: 0.75rem; }
dialog .actions { display: flex; gap: 0.5rem; justify-content: flex-end; }
.status-main { max-width: 72rem; margin: 0 auto; width: 100%; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 1rem; display: flex; flex-direction: column; gap: 0.6rem; }
.card h2 { font-size: 1.05rem; }
.figures { display: flex; flex-wrap: wrap; gap: 1.5rem; }
.figure { display: flex; flex-direction: column; }
.figure-value { font-size: 1.4rem; font-weight: 600; }
.figure-label { font-size: 0.85rem; color: var(--muted); }
.meter-row { display: flex; gap: 0.5rem; align-items: center; flex-wrap: wrap; }
.meter-label { font-size: 0.85rem; color: var(--muted); min-width: 8rem; }
td .meter-label { display: none; }
.meter { flex: 1 1 8rem; min-width: 5rem; height: 0.8rem; border: 1px solid var(--muted); border-radius: 4px; overflow: hidden; background: var(--panel); }
.meter-fill { height: 100%; background: var(--accent); }
.meter-text { font-size: 0.85rem; }
.table-scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 0.75rem; }
.chart { display: flex; align-items: flex-end; gap: 2px; height: 8rem; border-bottom: 1px solid var(--muted); }
.bar { flex: 1; background: var(--accent); min-width: 2px; }
.chart-axis { display: flex; justify-content: space-between; font-size: 0.8rem; color: var(--muted); }
.chart-summary { margin: 0; font-size: 0.9rem; }
#updated { color: var(--muted); font-size: 0.85rem; margin: 0; }
@media (max-width: 700px) {
  .layout { grid-template-columns: 1fr; grid-template-rows: auto 1fr; }
  aside { border-right: none; border-bottom: 1px solid var(--line); max-height: 30vh; }
  .charts { grid-template-columns: 1fr; }
  .message { max-width: 100%; }
}
`;

/** The pages' icon (served at /assets/favicon.svg, so browsers do not ask for /favicon.ico). */
export const PAGE_ICON_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0b57d0"/><text x="16" y="23" font-family="sans-serif" font-size="20" font-weight="700" text-anchor="middle" fill="#fff">B</text></svg>';
