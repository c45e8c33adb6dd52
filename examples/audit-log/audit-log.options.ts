export const AUDIT_LOG_OPTIONS = Symbol('AUDIT_LOG_OPTIONS');

export interface AuditLogOptions {
  /** The JSON-lines file events are appended to; created if missing, never truncated. */
  file: string;
  /** Users whose seat license was revoked: their joins are vetoed with SEAT_REVOKED. */
  blockedUserIds?: string[];
  /**
   * Hosts a room's `sceneUrl` may point to (e.g. `assets.example.com`); others are vetoed with
   * SCENE_URL_NOT_ALLOWED. Absent: any URL the protocol accepts.
   */
  allowedSceneHosts?: string[];
}
