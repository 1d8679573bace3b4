import Foundation
import GRDB
import TicketModel

/// A customer as the CLI, the intake API and `ticket show` see it. Every key is always present in
/// JSON (`null` when unset).
public struct CustomerRecord: Sendable, Equatable, Codable {
    /// The entity id: a name-based UUID of ``key``, so the same customer imported at two sites is one record.
    public var id: String
    /// What tickets name the customer by: the CRM id when there is one, else the email, else the phone.
    public var key: String
    @NullEncoded public var name: String?
    @NullEncoded public var email: String?
    @NullEncoded public var phone: String?
    @NullEncoded public var organization: String?
    @NullEncoded public var tier: String?
    /// The customer's value as the CRM states it (a number), kept as text.
    @NullEncoded public var value: String?

    /// The key of the CRM record that took this stub over (``isStub``), as ``TicketDatabase/customers(limit:)``
    /// lists it; `null` for any other record. A lookup of the stub answers with that record.
    @NullEncoded public var mergedInto: String? = nil

    /// A record keyed by its own e-mail or phone, with no CRM id: what intake makes for a sender
    /// the store does not know. A record with a CRM id and the same e-mail or phone takes it over.
    public var isStub: Bool { key == email?.lowercased() || key == phone }

}

/// What a CRM file or an intake request says about a customer; `nil` leaves a field as it is.
public struct CustomerDraft: Sendable, Equatable {
    public var crmID: String?
    public var name: String?
    public var email: String?
    public var phone: String?
    public var organization: String?
    public var tier: String?
    public var value: String?

    public init(crmID: String? = nil, name: String? = nil, email: String? = nil, phone: String? = nil,
                organization: String? = nil, tier: String? = nil, value: String? = nil) {
        self.crmID = crmID
        self.name = name
        self.email = email
        self.phone = phone
        self.organization = organization
        self.tier = tier
        self.value = value
    }

    /// The key tickets name the customer by: the CRM id, else the email (lowercased), else the phone.
    public var key: String? {
        if let id = crmID.flatMap(nonEmpty) { return id }
        if let email = email.flatMap(nonEmpty) { return email.lowercased() }
        return phone.flatMap(nonEmpty)
    }

    /// The entity id of the customer with `key`.
    public static func entityID(key: String) -> UUID { NameBasedID.make(["customer", key]) }

    /// The register writes the draft asks for, field by field (only the fields it sets).
    var fields: [(name: String, value: String)] {
        [("name", name), ("email", email?.lowercased()), ("phone", phone), ("organization", organization), ("tier", tier?.lowercased()),
         ("value", value)].compactMap { item in item.1.flatMap(nonEmpty).map { (item.0, $0) } }
    }
}

private func nonEmpty(_ text: String) -> String? {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    return trimmed.isEmpty ? nil : trimmed
}

/// What `customer import` did.
public struct CustomerImportReport: Sendable, Equatable, Encodable {
    public var rows = 0
    public var created = 0
    public var updated = 0
    public var unchanged = 0
    public init() {}
}

/// A customer's earlier and current tickets, for `ticket show`.
public struct CustomerHistory: Sendable, Encodable {
    public struct Item: Sendable, Encodable {
        public var displayNumber: String
        public var subject: String
        public var status: String
        public var channel: String?
        public var createdAt: String?
    }
    public var customer: CustomerRecord?
    /// The key the ticket names (also when no customer record exists for it).
    public var key: String
    public var ticketCount: Int
    public var openCount: Int
    /// The newest tickets first, at most 10.
    public var recent: [Item]
}

extension TicketDatabase {
    /// Writes customers from a CRM: each draft's fields that differ from the stored ones, in
    /// transactions of `chunk` customers. Writing the same file twice writes nothing the second time.
    /// - Parameter progress: called after each transaction with the rows done so far.
    public func importCustomers(_ drafts: [CustomerDraft], chunk: Int = 10_000, progress: (Int) -> Void = { _ in }) throws -> CustomerImportReport {
        var report = CustomerImportReport()
        for (index, draft) in drafts.enumerated() {
            guard draft.key != nil else { throw StoreError(.invalidInput, "customer \(index + 1) has no id, email or phone; give at least one") }
            for (name, value) in draft.fields { try checkText(value, "customer \(index + 1) \(name)", max: BlockLimits.maxTextBytes, allowEmpty: true) }
        }
        var start = 0
        while start < drafts.count {
            let part = drafts[start..<min(start + chunk, drafts.count)]
            var counts = (created: 0, updated: 0, unchanged: 0)
            try writeLocal { db, _, _ in
                counts = (0, 0, 0)
                var changes: [Change] = []
                // Two rows of one file for the same customer: the later one wins, written once.
                var merged: [String: CustomerDraft] = [:]
                var order: [String] = []
                for draft in part {
                    let key = draft.key!
                    if merged[key] == nil { order.append(key) }
                    merged[key] = Self.combine(merged[key], draft)
                }
                for key in order {
                    let written = try Self.customerChanges(db, key: key, draft: merged[key]!)
                    if written.isEmpty { counts.unchanged += 1 } else if written.isNew { counts.created += 1 } else { counts.updated += 1 }
                    changes += written.changes
                }
                return changes
            }
            report.rows += part.count
            report.created += counts.created
            report.updated += counts.updated
            report.unchanged += counts.unchanged
            start += part.count
            progress(start)
        }
        return report
    }

    private static func combine(_ earlier: CustomerDraft?, _ later: CustomerDraft) -> CustomerDraft {
        guard var out = earlier else { return later }
        out.name = later.name ?? out.name
        out.email = later.email ?? out.email
        out.phone = later.phone ?? out.phone
        out.organization = later.organization ?? out.organization
        out.tier = later.tier ?? out.tier
        out.value = later.value ?? out.value
        return out
    }

    /// The register writes that bring customer `key` to `draft` (fields the draft leaves out stay).
    static func customerChanges(_ db: Database, key: String, draft: CustomerDraft) throws -> (changes: [Change], isNew: Bool, isEmpty: Bool) {
        let id = CustomerDraft.entityID(key: key)
        let stored = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM customer WHERE id = ?"), arguments: [id.lowercaseText])
        var changes: [Change] = []
        let ref = EntityRef(kind: .customer, id: id)
        if stored?["key"] as String? != key { changes.append(Change(ref, .set(.custom("key"), .text(key)))) }
        for (name, value) in draft.fields where stored?[name] as String? != value {
            changes.append(Change(ref, .set(.custom(name), .text(value))))
        }
        return (changes, stored == nil, changes.isEmpty)
    }

    /// Rewrites a customer's row from its fold.
    static func materializeCustomer(_ db: Database, _ state: TicketState) throws {
        let fields = state.customFields
        // A record without a key (only possible from a faulty writer) is kept under its id.
        // Compiled once per connection: an import writes this row for every customer it touches.
        try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO customer (id, key, name, email, phone, organization, tier, value, updatedHLC, stateHash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [state.id.lowercaseText, fields["key"] ?? state.id.lowercaseText, fields["name"], fields["email"], fields["phone"],
                             fields["organization"], fields["tier"], fields["value"],
                             state.updated.map { Int64(bitPattern: $0.hlc.rawValue) }, Data(state.stateHash)])
    }

    static func customerRecord(_ row: Row) -> CustomerRecord {
        CustomerRecord(id: row["id"], key: row["key"], name: row["name"], email: row["email"], phone: row["phone"],
                       organization: row["organization"], tier: row["tier"], value: row["value"])
    }

    /// The customer a ticket or a person names: by key, then by email, then by phone; a stub that a
    /// CRM record took over answers with that record (``CustomerRecord/isStub``).
    public func customer(_ ref: String) throws -> CustomerRecord? {
        try writer.read { db in try Self.customer(db, ref) }
    }

    static func customer(_ db: Database, _ ref: String) throws -> CustomerRecord? {
        let text = ref.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        for sql in ["SELECT * FROM customer WHERE key = ? ORDER BY id LIMIT 1",
                    "SELECT * FROM customer WHERE email = ? COLLATE NOCASE ORDER BY id LIMIT 1",
                    "SELECT * FROM customer WHERE phone = ? ORDER BY id LIMIT 1"] {
            if let row = try Row.fetchOne(db.cachedStatement(sql: sql), arguments: [text]) { return try owner(db, customerRecord(row)) }
        }
        return nil
    }

    /// One customer per identity: a stub (a record keyed by its own e-mail or phone, as intake makes
    /// for a sender before the CRM import names them) belongs to the record with a CRM id that has
    /// the same e-mail or phone, the one with the lowest id when several do; any other record is its
    /// own. The answer is a function of the replicated customer records alone, so every replica
    /// gives the same one once they hold the same records, whichever arrived first; the stub itself
    /// is left as it is (its tickets keep naming it, and ``customerHistory(ofTicket:)`` finds them).
    ///
    /// A stub is matched by what it is keyed by only: one keyed by an e-mail address by that address,
    /// one keyed by a phone number by that number. A phone the stub merely holds may be a shared
    /// line, and would hand one person's tickets (and tier) to a colleague's record.
    static func owner(_ db: Database, _ record: CustomerRecord) throws -> CustomerRecord {
        guard record.isStub else { return record }
        let byEmail = record.email.map { record.key == $0.lowercased() } ?? false
        let sql = byEmail ? "SELECT * FROM customer WHERE id <> ? AND email = ? COLLATE NOCASE ORDER BY id"
            : "SELECT * FROM customer WHERE id <> ? AND phone = ? ORDER BY id"
        let rows = try Row.fetchAll(db.cachedStatement(sql: sql), arguments: [record.id, byEmail ? record.email : record.phone])
        return rows.lazy.map(customerRecord).first { !$0.isStub } ?? record
    }

    /// Whether some customer record holds `tier` (stored lowercased): stops at the first.
    public func holdsCustomerTier(_ tier: String) throws -> Bool {
        try writer.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM customer WHERE tier = ?)", arguments: [tier]) ?? false }
    }

    /// The tiers customer records hold, lowercased as they are stored.
    public func customerTiers() throws -> Set<String> {
        try writer.read { db in Set(try String.fetchAll(db, sql: "SELECT DISTINCT tier FROM customer WHERE tier IS NOT NULL")) }
    }

    /// The statement behind ``customers(limit:)``, read in `customer_on_key`'s order.
    static let customersSQL = "SELECT * FROM customer ORDER BY key LIMIT ?"

    /// Customers, by key; a stub that a CRM record took over names it in ``CustomerRecord/mergedInto``.
    public func customers(limit: Int = 10_000) throws -> [CustomerRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: Self.customersSQL, arguments: [limit]).map { row in
                var record = Self.customerRecord(row)
                if record.isStub {
                    let owner = try Self.owner(db, record)
                    if owner.id != record.id { record.mergedInto = owner.key }
                }
                return record
            }
        }
    }

    /// The customer of ticket `ref` with their tickets, or `nil` when the ticket names no customer.
    public func customerHistory(ofTicket ref: String) throws -> CustomerHistory? {
        let id = try resolve(ref)
        return try writer.read { db in
            guard let key = try String.fetchOne(db, sql: "SELECT customer FROM ticket WHERE id = ?", arguments: [id.lowercaseText]) else { return nil }
            let record = try Self.customer(db, key)
            // Tickets name a customer by its key; earlier ones may have used the email or phone.
            let names = Array(Set([key] + [record?.key, record?.email, record?.phone].compactMap { $0 }))
            let marks = names.map { _ in "?" }.joined(separator: ", ")
            let rows = try Row.fetchAll(db, sql: """
                SELECT displayNumber, subject, status, channel, createdHLC FROM ticket
                WHERE customer IN (\(marks)) AND number IS NOT NULL AND NOT deleted ORDER BY createdHLC DESC, id DESC
                """, arguments: StatementArguments(names))
            let open = rows.filter { !(Status(rawValue: $0["status"])?.isResolved ?? false) }.count
            let recent = rows.prefix(10).map { row in
                CustomerHistory.Item(displayNumber: row["displayNumber"], subject: row["subject"], status: row["status"], channel: row["channel"],
                                     createdAt: (row["createdHLC"] as Int64?).map { HLC(rawValue: UInt64(bitPattern: $0)).iso8601 })
            }
            return CustomerHistory(customer: record, key: key, ticketCount: rows.count, openCount: open, recent: Array(recent))
        }
    }
}
