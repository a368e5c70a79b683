#!/usr/bin/env node
// The kill switch's command (`npx vitest-chaos stop | resume | status`); the
// logic is in src/api/control-cli.ts.
import { main } from '../dist/api/control-cli.js';

process.exitCode = await main(process.argv.slice(2));
