import { z } from 'zod';

/** NATS connection settings in a config file (natsFlags.ts): secrets stay in the files these name. */
export const NATS_FILE_OPTIONS = {
  natsUser: z.string().min(1).optional(),
  natsPasswordFile: z.string().min(1).optional(),
  natsTokenFile: z.string().min(1).optional(),
  natsNkeySeedFile: z.string().min(1).optional(),
  natsCreds: z.string().min(1).optional(),
  natsCa: z.string().min(1).optional(),
  natsCert: z.string().min(1).optional(),
  natsKey: z.string().min(1).optional(),
  natsTls: z.boolean().optional(),
};
