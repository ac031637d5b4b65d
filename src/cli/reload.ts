/**
 * Reloading the config file while serving (issue 13): on SIGHUP, and on a change of the file with
 * `--watch-config`. A file that cannot be read or built is refused with `SP_ERR_CONFIG` (logged)
 * and the running config kept.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { ServerPushServer } from '../server/server.ts';
import type { ServerLimits } from '../server/limits.ts';
import { createAccessPolicy, type AccessOptions } from '../server/access/policy.ts';
import { isServerPushError } from '../errors.ts';
import { logEvent, type Logger } from '../log.ts';
import { loadConfig, type ConfigFile } from './config.ts';

export interface ConfigReloaderOptions {
  server: ServerPushServer;
  /** The config file; undefined when the streams came from flags (nothing to reload). */
  file: string | undefined;
  /** The config as the server started with it (to tell what a reload cannot change). */
  initial: ConfigFile | undefined;
  /** Limits given as flags: they win over the file's, at each reload too. */
  flagLimits: ServerLimits;
  /** Access flags (`--htpasswd`, `--allow`…): they replace the file's keys of the same name, at each reload too. */
  flagAccess: AccessOptions;
  logger: Logger;
}

/** Quiet time after a change of the file before it is read (editors write in several steps). */
const SETTLE_MS = 200;

export class ConfigReloader {
  private watcher: FSWatcher | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: ConfigReloaderOptions) {}

  /** Re-reads the file and applies it; never throws (a refusal is logged). Resolves true when applied. */
  async reload(trigger: string): Promise<boolean> {
    const { server, file, initial, flagLimits, flagAccess, logger } = this.options;
    if (file === undefined) {
      logger.info(`${trigger}: no config file to reload (the streams come from the command line)`);
      return false;
    }
    try {
      const config = await loadConfig(file);
      // The listening socket, the certificate files and the Redis bus are set up at start (SIGHUP
      // reads the certificate files it started with again; it does not move to others).
      const fixed = (['port', 'host', 'backlog', 'basePath', 'tls', 'redis', 'redisPasswordFile', 'redisMaxFrameBytes'] as const).filter((key) => JSON.stringify(config[key]) !== JSON.stringify(initial?.[key]));
      if (fixed.length > 0) logger.warn('SP_ERR_CONFIG', `${trigger}: ${fixed.join(', ')} changed in ${file}; a restart applies ${fixed.length === 1 ? 'it' : 'them'}, the rest is reloaded`);
      // Users, tokens and rights are read anew too (an htpasswd file changed by `serverpush passwd`).
      const accessOptions = config.access || Object.keys(flagAccess).length > 0 ? { ...config.access, ...flagAccess } : undefined;
      const access = await createAccessPolicy(accessOptions);
      const changes = await server.reload({ streams: config.streams, limits: { ...config.ops?.limits, ...flagLimits }, access });
      const list = (names: string[]) => (names.length > 0 ? names.join(',') : 'none');
      logEvent(logger, 'info', `${trigger}: reloaded ${file}: added ${list(changes.added)}, removed ${list(changes.removed)}, source restarted ${list(changes.restarted)}, replaced ${list(changes.replaced)}, unchanged ${list(changes.unchanged)}`, {
        event: 'reload',
        added: changes.added.join(','),
        removed: changes.removed.join(','),
        restarted: changes.restarted.join(','),
        replaced: changes.replaced.join(','),
        unchanged: changes.unchanged.join(','),
      });
      return true;
    } catch (error) {
      const message = isServerPushError(error) ? `${error.message} (${error.code})` : String((error as Error).message ?? error);
      logger.error('SP_ERR_CONFIG', `${trigger}: refused ${file}, the running config is kept: ${message}`);
      return false;
    }
  }

  /** Reloads whenever the file changes (its folder is watched: editors replace the file). */
  watch(): void {
    const { file } = this.options;
    if (file === undefined || this.watcher) return;
    const path = resolve(file);
    this.watcher = watch(dirname(path), (_event, name) => {
      if (name !== null && name !== basename(path)) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload('config file changed'), SETTLE_MS);
    });
    this.watcher.on('error', (error) => this.options.logger.warn('SP_ERR_CONFIG', `cannot watch ${file} any more: ${error.message}`));
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
