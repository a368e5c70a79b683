// Every game-day file runs one experiment on a stack of its own: started and warmed up before
// its test, with the order flow the experiment loads it with, and stopped after it.
import { afterAll, beforeAll } from 'vitest';
import { orderFlow, warmUp, type OrderFlow } from './order-flow.js';
import { startTradingStack, type StackOptions, type TradingStack } from './stack.js';

export function tradingStackPerFile(opts?: StackOptions): { readonly stack: TradingStack; readonly flow: OrderFlow } {
  let stack: TradingStack | undefined;
  let flow: OrderFlow | undefined;
  beforeAll(async () => {
    stack = await startTradingStack(opts);
    await warmUp(stack.url);
    flow = orderFlow(stack.url);
  });
  afterAll(() => stack?.stop());
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the trading stack is not started (beforeAll failed?)');
    return v;
  };
  return {
    get stack() {
      return started(stack);
    },
    get flow() {
      return started(flow);
    },
  };
}
