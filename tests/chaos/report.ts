/** RELIABILITY.md, written by `npm run chaos` from the campaigns' figures. */
import type { CampaignResult } from './campaigns.js';

export function reliabilityMarkdown(results: readonly CampaignResult[], machine: string, date: string): string {
  const lines = [
    '# Reliability',
    '',
    'Written by `npm run chaos`; do not edit by hand. Every campaign runs against real processes (redis-server, gpu-nodes on the tiny model, the gateway) started for it; a quick version of each runs in `npm test` (`tests/chaos-quick.test.ts`).',
    '',
    `Machine: ${machine}. Run ${date}. Reproduce: \`npm run chaos\` (15–20 minutes on 2 cores), \`npm run chaos -- --quick\`.`,
    '',
    '| campaign | figure | value | target | met |',
    '|---|---|---|---|---|',
  ];
  for (const result of results) {
    for (const figure of result.figures) lines.push(`| ${result.name} | ${figure.metric} | ${String(figure.value).replace(/\|/g, '\\|')} | ${figure.target} | ${figure.target === '—' ? '' : figure.ok ? 'yes' : '**no**'} |`);
  }
  lines.push('', '## Campaigns', '');
  for (const result of results) lines.push(`- **${result.name}** (${result.seconds.toFixed(0)} s): ${result.setup}`);
  return `${lines.join('\n')}\n`;
}
