/** Parsers for the text values of Redis HASH fields, shared by every record schema of the region. */
import { z } from 'zod';

/** A non-negative integer stored as text. */
export const countField = z.string().regex(/^\d+$/).transform(Number);

/** JSON stored as text, parsed with `schema`; `problem` is the issue reported when it does not parse. */
export function jsonField<T extends z.ZodTypeAny>(schema: T, problem: string) {
  return z.string().transform((text, context): z.infer<T> => {
    try {
      return schema.parse(JSON.parse(text));
    } catch {
      context.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
  });
}
