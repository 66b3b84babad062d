import type { TaskState } from '../domain/status.js';

/** How a task runner tells the worker its state (written to the status topic). */
export interface TaskReporter {
  report(state: TaskState, trace?: string): Promise<void>;
}
