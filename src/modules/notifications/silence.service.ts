import {randomUUID} from "node:crypto";
import {Inject, Injectable} from "@tsed/common";
import {ForbiddenError, InvalidInputError, NotFoundError} from "../../common/errors.js";
import {hasRole} from "../../platform/auth/auth-user.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import type {Silence, SilenceCreate, SilencePage, SilenceQuery} from "./silence.models.js";
import {type SilenceRow, SilenceRepository} from "./silence.repository.js";

/** The longest silence: a forgotten one must end on its own. */
export const MAX_SILENCE_MS = 7 * 86_400_000;

const PAGE_SIZE = 50;

/**
 * Silences hold back webhook deliveries of alert events in their scope (the relay marks those
 * deliveries `suppressed`); evaluation, alert lists and the stream are unaffected. A device or
 * rule scope needs an operator; the whole tenant (neither id) needs an admin.
 */
@Injectable()
export class SilenceService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private silences!: SilenceRepository;

  async create(input: SilenceCreate): Promise<Silence> {
    const {em, tenantId, user} = this.tenant;
    const scoped = Boolean(input.deviceId || input.ruleId);
    if (!scoped && !hasRole(user.role, "admin"))
      throw new ForbiddenError("A silence of the whole tenant (no deviceId, no ruleId) needs the admin role");
    const now = Date.now();
    const startsAt = input.startsAt ?? new Date(now);
    const endsAt = input.endsAt;
    if (endsAt.getTime() <= Math.max(startsAt.getTime(), now)) throw invalid("endsAt", "endsAt must be after startsAt and in the future");
    if (endsAt.getTime() - startsAt.getTime() > MAX_SILENCE_MS) throw invalid("endsAt", "A silence lasts at most 7 days");
    if (!input.comment.trim()) throw invalid("comment", "comment must not be blank");
    if (input.deviceId && !(await this.silences.deviceExists(em, tenantId, input.deviceId)))
      throw new NotFoundError("Device", input.deviceId);
    if (input.ruleId) {
      const ruleDevice = await this.silences.ruleDevice(em, tenantId, input.ruleId);
      if (!ruleDevice) throw new NotFoundError("Alert rule", input.ruleId);
      if (input.deviceId && ruleDevice !== input.deviceId) throw invalid("ruleId", "The rule is not the device's");
    }
    return this.silences.insert(em, tenantId, {
      id: randomUUID(),
      deviceId: input.deviceId?.toLowerCase() ?? null,
      ruleId: input.ruleId?.toLowerCase() ?? null,
      startsAt,
      endsAt,
      comment: input.comment,
      createdBy: user.subject
    });
  }

  async list(query: SilenceQuery): Promise<SilencePage> {
    const page = query.page ?? 1;
    const {items, total} = await this.silences.list(this.tenant.em, this.tenant.tenantId, {
      active: query.active,
      page,
      pageSize: PAGE_SIZE
    });
    return {items, total, page, pageSize: PAGE_SIZE};
  }

  /** Ends it now; the row stays (a tenant-wide one needs an admin, like creating it). */
  async end(id: string): Promise<Silence> {
    const {em, tenantId, user} = this.tenant;
    const silence: SilenceRow | undefined = await this.silences.find(em, tenantId, id);
    if (!silence) throw new NotFoundError("Silence", id);
    if (!silence.deviceId && !silence.ruleId && !hasRole(user.role, "admin"))
      throw new ForbiddenError("Ending a silence of the whole tenant needs the admin role");
    return (await this.silences.end(em, tenantId, id))!;
  }
}

function invalid(path: string, message: string): InvalidInputError {
  return new InvalidInputError(message, [{path, message}]);
}
