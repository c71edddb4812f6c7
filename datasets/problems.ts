/** A problem found in a data set: where (file, record) and how bad. */
import { z } from 'zod';

export const ProblemSchema = z.object({
  /** error: training or evaluation would be wrong; warning: suspicious but usable */
  severity: z.enum(['error', 'warning']),
  /** stable machine-readable kind, e.g. missing_image, bbox_outside_image */
  code: z.string(),
  message: z.string(),
  file: z.string().optional(),
  /** e.g. "annotations[17] (id 42)" */
  record: z.string().optional(),
});
export type Problem = z.infer<typeof ProblemSchema>;

/** One line: "file: record: message". */
export function formatProblem(p: Problem): string {
  return [p.file, p.record, p.message].filter(Boolean).join(': ');
}
