/** Moved to libs/common (one Clock/Timers for every service); re-exported so imports stay put. */
export { type Clock, type Timers, systemClock, systemTimers } from '@skein/common/timers.js';
