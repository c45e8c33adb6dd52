import type { INestApplication } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { AuthService } from './auth/auth.service.js';
import { Fanout } from './bus/fanout.service.js';
import { Replies } from './delivery/replies.js';
import { appConfig, type AppConfig } from './config/app.config.js';
import { MultiplayerWsAdapter, type UpgradeDecision } from './gateway/multiplayer-ws.adapter.js';
import { MultiplayerGateway } from './gateway/multiplayer.gateway.js';
import { ShutdownService } from './lifecycle/shutdown.service.js';
import { ConnectionAdmission } from './limits/connection-admission.js';
import { createLogger } from './logging/create-logger.js';
import type { ServerMessage } from './protocol/protocol.js';
import { ResumeService } from './resume/resume.service.js';
import { REFUSAL_REASON_OF_STATUS, ServerCounters } from './telemetry/server-counters.js';
import { UsersService } from './users/users.service.js';
import { parseBinaryPose, readBinaryPose, type BinaryPose } from './gateway/binary-pose.parser.js';
import { BINARY_POSE_TYPE } from './protocol/binary-poses.js';

/** Everything main.ts and the end-to-end tests share: logger, ws adapter, upgrade checks. */
export function configureApp(app: INestApplication): AppConfig {
  const config = app.get<AppConfig>(appConfig.KEY);
  app.useLogger(createLogger(config));
  const auth = app.get(AuthService);
  const shutdown = app.get(ShutdownService);
  const users = app.get(UsersService);
  const fanout = app.get(Fanout);
  const admission = app.get(ConnectionAdmission);
  const replies = app.get(Replies);
  const resume = app.get(ResumeService);
  const gateway = app.get(MultiplayerGateway);
  const counters = app.get(ServerCounters);

  const shuttingDown: UpgradeDecision = { ok: false, status: 503, message: 'Server shutting down' };
  const checkUpgrade = async (request: IncomingMessage): Promise<UpgradeDecision> => {
    if (shutdown.isShuttingDown) {
      return shuttingDown;
    }
    const admitted = admission.admit(request);
    if (!admitted.ok) {
      return admitted;
    }
    const result = await auth.authenticate(request, admission.addressOf(request));
    if (!result.ok) {
      return result;
    }
    // A `?resume=` may name seats held on another instance: looked up before the socket opens.
    await resume.prepareUpgrade(request, result.identity.userId);
    // Asked again after the waits above (a Redis round trip): a shutdown that began meanwhile
    // has told every connection to go already, and would not tell this one.
    if (shutdown.isShuttingDown) {
      return shuttingDown;
    }
    return { ok: true };
  };
  // Counted here, so a refusal told as a 44xx close after the upgrade counts as refused too.
  const verifyUpgrade = async (request: IncomingMessage): Promise<UpgradeDecision> => {
    let decision: UpgradeDecision;
    try {
      decision = await checkUpgrade(request);
    } catch (error) {
      counters.refuse('error');
      throw error;
    }
    if (decision.ok) {
      counters.connectionsAccepted++;
    } else {
      counters.refuse(
        shutdown.isShuttingDown
          ? 'shutting_down'
          : (REFUSAL_REASON_OF_STATUS[decision.status] ?? 'other'),
      );
    }
    return decision;
  };

  app.useWebSocketAdapter(
    new MultiplayerWsAdapter(app, {
      maxPayload: config.maxMessageBytes,
      perMessageDeflate: config.perMessageDeflate,
      maxClientBufferBytes: config.maxClientBufferBytes,
      maxJsonDepth: config.maxJsonDepth,
      maxPendingMessages: config.maxPendingMessages,
      rateLimits: config.rateLimits,
      counters,
      verifyUpgrade,
      releaseRefusedUpgrade: (request: IncomingMessage) => admission.releasePlace(request),
      closeSocket: (socket: WebSocket, code: number, reason: string) => {
        const connection = users.connectionOf(socket);
        if (connection) {
          connection.close(code, reason);
        } else {
          socket.close(code, reason);
        }
      },
      isThrowaway: (message: Record<string, unknown>) => fanout.isThrowawayBroadcast(message),
      shedBroadcast: (socket: WebSocket, roomId: unknown) => {
        if (!fanout.shedsOnArrival) {
          return false;
        }
        const connection = users.connectionOf(socket);
        return connection !== undefined && fanout.shedOnArrival(connection, roomId);
      },
      countDrop: (socket: WebSocket, roomId: unknown) => {
        const connection = users.connectionOf(socket);
        if (connection) {
          fanout.countDropOnArrival(connection, roomId);
        }
      },
      relayAtOnce: (socket: WebSocket, message: Record<string, unknown>) =>
        gateway.relayAtOnce(socket, message),
      readBinary: (socket: WebSocket, data: Buffer) => {
        const connection = users.connectionOf(socket);
        if (!connection?.binaryPoses) {
          return undefined;
        }
        // Relayed in entry form only as a throwaway pose; else as the broadcast it stands for.
        return fanout.isThrowaway(BINARY_POSE_TYPE)
          ? readBinaryPose(data, connection)
          : parseBinaryPose(data, connection.userId);
      },
      relayBinaryPose: (pose: BinaryPose) => gateway.relayBinaryPose(pose),
      connectWork: (socket: WebSocket) => users.connectionOf(socket)?.connectWork,
      reply: (socket: WebSocket, reply: unknown) => {
        const connection = users.connectionOf(socket);
        if (connection) {
          replies.send(connection, reply as ServerMessage);
        }
      },
    }),
  );
  return config;
}
