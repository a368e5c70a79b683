export { chaos, chaos as default, type ChaosPluginOptions } from './api/vitest-plugin.js';
