import { Module } from '@nestjs/common';
import { ConnectionAdmission } from './connection-admission.js';

/** Upgrade admission (origin, capacity, per-address share); per-connection budgets live in the adapter. */
@Module({
  providers: [ConnectionAdmission],
  exports: [ConnectionAdmission],
})
export class LimitsModule {}
