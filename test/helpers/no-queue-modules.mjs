// Loaded with --import: any import of bullmq or ioredis fails, so a test can show a command never loads them.
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(`export async function resolve(spec, ctx, next) {
  if (spec === 'bullmq' || spec === 'ioredis') throw new Error('the queue modules were loaded: ' + spec);
  return next(spec, ctx);
}`));
