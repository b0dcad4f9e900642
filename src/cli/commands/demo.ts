import { UserError } from '../../common/index.ts';

// Placeholder until its issue lands; replaced by the real command.
export async function run(_argv: string[]): Promise<number> {
  throw new UserError("command 'demo' is not implemented yet");
}
