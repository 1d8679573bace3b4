import GRDB

/// The names of this store's local settings: kept in the store's file, never replicated.
public enum LocalSetting: String, Sendable, CaseIterable {
    /// The agent this store's writes are recorded as when no `--actor` or `TIERLINE_ACTOR` is given
    /// (`tierline agent use NAME`).
    case actor
    /// The running node's report of its links (``NodeLinks``), for `tierline status`.
    case links
    /// The running node's report of its PostgreSQL mirror (JSON, written by the Mirror module), for `tierline status`.
    case mirror
}

extension TicketDatabase {
    /// The value of a local setting, or `nil` when it is not set.
    public func localSetting(_ setting: LocalSetting) throws -> String? {
        try writer.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM localSetting WHERE name = ?", arguments: [setting.rawValue])
        }
    }

    /// Sets a local setting (`nil` clears it). Not replicated: it is written in this store only,
    /// without a block.
    public func setLocalSetting(_ setting: LocalSetting, to value: String?) throws {
        try writer.write { db in
            if let value {
                try db.execute(sql: "INSERT OR REPLACE INTO localSetting (name, value) VALUES (?, ?)", arguments: [setting.rawValue, value])
            } else {
                try db.execute(sql: "DELETE FROM localSetting WHERE name = ?", arguments: [setting.rawValue])
            }
        }
    }
}
