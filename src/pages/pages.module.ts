import { Module } from '@nestjs/common';
import { PagesController } from './pages.controller.js';

/** The demo and admin pages (docs/pages.md). */
@Module({ controllers: [PagesController] })
export class PagesModule {}
