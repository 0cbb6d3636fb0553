import { redisCrash } from './dist/chaos/campaigns.js';
const result = await redisCrash();
console.log(JSON.stringify(result.figures));
process.exit(0);
