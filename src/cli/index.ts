export { parseFlags, requireFlag, intFlag, numFlag } from './args.ts';
