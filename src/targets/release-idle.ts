// What is kept between faults for speed, released when no fault uses it: the
// packet path's kept rules of a netns (queue-slots.ts, after LINGER_MS) and the
// cgroup links of a target with no fault (kernel/slotted-programs.ts, after
// LINK_LINGER_MS). The plugin's setup file releases both at the end of each test
// file, so nothing of ours outlives the file that made it; leak checks call it
// before they look, as the end of a file would.
import { releaseIdleLinks } from '../kernel/slotted-programs.js';
import { releaseIdleQueueSlots } from './queue-slots.js';

export async function releaseIdle(): Promise<void> {
  releaseIdleLinks();
  await releaseIdleQueueSlots();
}
