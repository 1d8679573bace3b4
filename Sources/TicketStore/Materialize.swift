import Foundation
import GRDB
import TicketModel

extension TicketDatabase {
    /// Folds one ticket from the blocks that touch it (the pure rules of ``TicketState``).
    /// Changes the author's role may not make (``Authorization``) are skipped.
    static func fold(_ db: Database, _ id: UUID, roles known: [SiteID: SiteRole]? = nil) throws -> TicketState {
        let roles = try known ?? Self.roles(db)
        let rows = try Row.fetchAll(db, sql: """
            SELECT b.bytes FROM blockEntity e JOIN block b ON b.origin = e.origin AND b.seq = e.seq
            WHERE e.entity = ?
            """, arguments: [id.lowercased])
        var changes: [EntityChange] = []
        for row in rows {
            let block = try decodeStored(row["bytes"])
            let role = roles[block.origin] ?? .site
            for (entity, change) in block.entityChanges where entity.id == id {
                if Authorization.refusal(change.operation, on: entity, by: role) == nil { changes.append(change) }
            }
        }
        return TicketState.fold(id: id, changes: changes)
    }

    /// Rewrites the materialized rows of the touched entities: tickets and configuration documents.
    static func materialize(_ db: Database, _ entities: Set<EntityRef>) throws {
        try materialize(db, Set(entities.filter { $0.kind == .ticket }.map(\.id)))
        for entity in entities where entity.kind == .config { try materializeConfig(db, entity.id) }
    }

    /// A configuration document's published versions: one row per version event, the copy with the
    /// smallest (stamp, change id) when two blocks carry the same version id.
    static func materializeConfig(_ db: Database, _ id: UUID) throws {
        let rows = try Row.fetchAll(db, sql: """
            SELECT b.bytes FROM blockEntity e JOIN block b ON b.origin = e.origin AND b.seq = e.seq WHERE e.entity = ?
            """, arguments: [id.lowercased])
        var versions: [UUID: EventEntry] = [:]
        let roles = try Self.roles(db)
        for row in rows {
            let block = try decodeStored(row["bytes"])
            // Only the coordinator publishes configuration.
            guard Authorization.refusal(.create(number: 0), on: EntityRef(kind: .config, id: id), by: roles[block.origin] ?? .site) == nil else { continue }
            for (entity, change) in block.entityChanges where entity == EntityRef(kind: .config, id: id) {
                guard case .event(let event) = change.operation, event.kind == .configVersion else { continue }
                let entry = EventEntry(event: event, stamp: change.stamp, dot: change.dot)
                if let held = versions[event.id], (held.stamp, held.dot) < (entry.stamp, entry.dot) { continue }
                versions[event.id] = entry
            }
        }
        try db.execute(sql: "DELETE FROM configVersion WHERE entity = ?", arguments: [id.lowercased])
        for (versionID, entry) in versions {
            try db.execute(sql: "INSERT INTO configVersion (id, entity, hlc, origin, actor, body) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [versionID.lowercased, id.lowercased, Int64(bitPattern: entry.stamp.hlc.rawValue),
                                       entry.stamp.site.rawValue, entry.event.actor, entry.event.body])
        }
    }

    /// Re-folds `ids` and rewrites their materialized rows, then resolves merges across tickets if any
    /// of them asks for (or asked for) a merge.
    static func materialize(_ db: Database, _ ids: Set<UUID>) throws {
        guard !ids.isEmpty else { return }
        var mergesChanged = false
        let roles = try Self.roles(db)
        for id in ids {
            let state = try fold(db, id, roles: roles)
            let key = id.lowercased
            let previousCandidate = try String.fetchOne(db, sql: "SELECT mergeCandidate FROM ticket WHERE id = ?", arguments: [key])
            let candidate = state.mergeCandidate?.target.lowercased
            if previousCandidate != nil || candidate != nil { mergesChanged = true }
            let owner = state.owner
            let origin = state.originSite?.rawValue
            try db.execute(sql: """
                INSERT OR REPLACE INTO ticket (id, displayNumber, number, originSite, owningSite, owningEpoch, subject, status,
                  baseStatus, priority, assignee, "group", category, customer, channel, pendingUntil, escalationCycle,
                  escalationLevel, mergeCandidate, mergedInto, mergeRejected, deleted, createdHLC, updatedHLC, conflictCount, stateHash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?, ?, ?, ?)
                """, arguments: [
                    key, state.displayNumber, state.number.map { Int64($0) }, origin, owner.site?.rawValue ?? origin,
                    Int64(owner.epoch), state.subject, state.baseStatus.rawValue, state.baseStatus.rawValue,
                    state.priority.rawValue, state.text(.assignee), state.text(.group), state.text(.category),
                    state.text(.customer), state.text(.channel), pendingUntil(state), Int64(state.escalation.cycle),
                    Int64(state.escalation.level), candidate, state.isDeleted,
                    state.created.map { Int64(bitPattern: $0.hlc.rawValue) }, state.updated.map { Int64(bitPattern: $0.hlc.rawValue) },
                    state.conflicts.count, Data(state.stateHash),
                ])
            try db.execute(sql: "DELETE FROM ticketElement WHERE ticket = ?", arguments: [key])
            for (set, byElement) in state.elements {
                for element in byElement.keys {
                    try db.execute(sql: "INSERT INTO ticketElement (ticket, setName, element) VALUES (?, ?, ?)",
                                   arguments: [key, set.name, element])
                }
            }
            try db.execute(sql: "DELETE FROM ticketEvent WHERE ticket = ?", arguments: [key])
            for entry in state.events {
                try db.execute(sql: """
                    INSERT INTO ticketEvent (id, ticket, hlc, site, kind, actor, visibility, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [entry.event.id.lowercased, key, Int64(bitPattern: entry.stamp.hlc.rawValue),
                                     entry.stamp.site.rawValue, entry.event.kind.rawValue, entry.event.actor,
                                     entry.event.visibility.rawValue, entry.event.body])
            }
            try db.execute(sql: "DELETE FROM ticketConflict WHERE ticket = ?", arguments: [key])
            for conflict in state.conflicts {
                try db.execute(sql: """
                    INSERT INTO ticketConflict (id, ticket, field, firstValue, firstSite, secondValue, secondSite)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [conflict.id, key, conflict.field.description, conflict.first.value.description,
                                     conflict.first.stamp.site.rawValue, conflict.second.value.description,
                                     conflict.second.stamp.site.rawValue])
            }
        }
        if mergesChanged { try resolveMerges(db) }
    }

    private static func pendingUntil(_ state: TicketState) -> Int64? {
        if case .integer(let ms)? = state.registers[.pendingUntil]?.value { return ms }
        return nil
    }

    /// Applies ``MergeGraph`` over every ticket that asks for a merge (merges are rare).
    static func resolveMerges(_ db: Database) throws {
        let ids = try String.fetchAll(db, sql: "SELECT id FROM ticket WHERE mergeCandidate IS NOT NULL OR mergedInto IS NOT NULL OR mergeRejected")
        var candidates: [UUID: MergeCandidate] = [:]
        let roles = try Self.roles(db)
        for text in ids {
            let id = try uuid(text)
            if let candidate = try fold(db, id, roles: roles).mergeCandidate { candidates[id] = candidate }
        }
        let graph = MergeGraph.resolve(candidates)
        for text in ids {
            let id = try uuid(text)
            let target = graph.accepted[id]
            try db.execute(sql: """
                UPDATE ticket SET mergedInto = ?, mergeRejected = ?,
                  status = CASE WHEN ? IS NULL THEN baseStatus ELSE 'merged' END
                WHERE id = ?
                """, arguments: [target?.lowercased, graph.rejected.contains(id), target?.lowercased, text])
        }
    }
}
