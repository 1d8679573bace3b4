import Escalation
import Foundation
import StrictJSON
import TicketModel
import TicketStore

/// The agent directory's use cases: adding, retiring and importing agents, each a new version of
/// an `agent` configuration document published by the coordinator (``EscalationDesk/publish(_:file:actor:allowUnknownTargets:)``
/// checks them like any other document), and which agent this store writes as.
///
/// ```swift
/// let agents = try AgentDesk(store: store)
/// try agents.add(AgentDocument(name: "alice", version: 1, displayName: "Alice Martin", site: "north", groups: ["billing-L1"]), actor: "root")
/// ```
///
/// Runs on the caller's thread and blocks on the store's write.
public struct AgentDesk: Sendable {
    public let escalation: EscalationDesk

    public init(store: TicketDatabase) throws {
        escalation = try DeskError.translating { try EscalationDesk(store: store) }
    }

    public var store: TicketDatabase { escalation.store }

    /// The directory as this replica holds it.
    public func directory() throws -> AgentDirectory { AgentDirectory(library: try escalation.library()) }

    /// Publishes `agent` as its next version: 1 for a new agent, latest + 1 for one added again.
    /// The version and `active` given are not read: the desk sets them (an agent added again is
    /// active again).
    /// - Returns: the version published.
    /// - Throws: ``DeskError`` `notPermitted` off the coordinator, `invalidConfiguration` listing
    ///   every bad value.
    @discardableResult
    public func add(_ agent: AgentDocument, actor: String) throws -> AgentDocument {
        var document = agent
        document.version = (try directory().agent(agent.name)?.version ?? 0) + 1
        document.active = true
        return try publish([document], actor: actor).first ?? document
    }

    /// Publishes the agent's latest version again with `active` false and the version raised: it
    /// receives nothing more and is refused as an assignee. Its name stays in every history.
    @discardableResult
    public func deactivate(_ name: String, actor: String) throws -> AgentDocument {
        try checkPermitted()
        let directory = try directory()
        guard var document = directory.agent(name) else {
            throw DeskError(.notFound, "no agent \(StrictJSON.printable(name).debugDescription) in the directory"
                            + (directory.suggestion(for: name).map { "; did you mean \"\($0)\"?" } ?? "; `tierline agent list` shows them"))
        }
        guard document.active else { throw DeskError(.wrongState, "agent \(name) is already deactivated") }
        document.active = false
        document.version += 1
        return try publish([document], actor: actor).first ?? document
    }

    /// Publishes every agent of a CSV file, or none: each row is checked, and every problem of the
    /// file is reported with its line.
    ///
    /// Header: `name,display_name,email,site,groups,role,roles,active,calendar` (any order; `groups`
    /// and `roles` separated by `;`, `active` `true`/`false`, empty for true). A name already in the
    /// directory gets its next version; a row equal to the published agent is left out.
    /// - Returns: the versions published.
    public func importAgents(csv data: Data, file: String, actor: String) throws -> [AgentDocument] {
        try checkPermitted()
        let (rows, rowProblems) = try AgentCSV.parse(data, file: file)
        let library = try escalation.library()
        let directory = AgentDirectory(library: library)
        var documents: [AgentDocument] = []
        var lines: [Int] = []
        var problems = rowProblems
        var seen: [String: Int] = [:]
        let flawed = Set(rowProblems.map(\.0))
        for row in rows where !flawed.contains(row.line) {
            if let first = seen[row.agent.name] {
                problems.append((row.line, "\(file) line \(row.line): agent \(row.agent.name) is already on line \(first)"))
                continue
            }
            seen[row.agent.name] = row.line
            let published = directory.agent(row.agent.name)
            var document = row.agent
            document.version = (published?.version ?? 0) + 1
            if var same = published {
                same.version = document.version
                if same == document { continue }
            }
            documents.append(document)
            lines.append(row.line)
        }
        // The documents' own checks (e-mail, site, groups, roles, calendar), by the file's lines.
        for issue in try issues(of: documents, library: library) {
            guard let index = issue.index, index < lines.count else {
                problems.append((0, "\(file): \(issue.message)"))
                continue
            }
            let column = issue.key.isEmpty ? "" : ", " + AgentCSV.column(forKey: issue.key)
            problems.append((lines[index], "\(file) line \(lines[index])\(column): \(issue.message)"))
        }
        guard problems.isEmpty else {
            throw DeskError(.invalidInput, field: "file", "has problems; nothing was published",
                            problems: problems.sorted { $0.0 < $1.0 }.map(\.1))
        }
        guard !documents.isEmpty else { return [] }
        return try publish(documents, actor: actor)
    }

    /// Makes `name` the agent this store's writes are recorded as when no `--actor` is given. Local
    /// to this store, never replicated; `nil` clears it.
    public func use(_ name: String?, allowUnknown: Bool = false) throws {
        if let name {
            try AgentDesk.checkName(name, field: nil)
            let directory = try directory()
            if directory.isPublished && !allowUnknown { try DirectoryCheck(directory).agent(name, field: nil) }
        }
        try DeskError.translating { try store.setLocalSetting(.actor, to: name) }
    }

    /// Refuses to record an agent's work as `name` once a directory is published and `name` is not
    /// an active agent of it: the history would name nobody, or a retired agent. Until agents sign
    /// in, the actor is what the agent says; this catches slips, not impostors.
    public func checkActor(_ name: String) throws {
        let directory = try directory()
        guard directory.isPublished else { return }
        guard let agent = directory.agent(name) else {
            let near = directory.suggestion(for: name).map { " Did you mean \"\($0)\"?" } ?? ""
            throw DeskError(.invalidInput, field: "actor", "\(StrictJSON.printable(name).debugDescription) is not an agent of the directory.\(near) "
                            + "Pass --actor NAME, set TIERLINE_ACTOR, or make one the default with `tierline agent use NAME`")
        }
        guard agent.active else {
            throw DeskError(.invalidInput, field: "actor", "agent \(name) is deactivated; write as an active agent")
        }
    }

    /// The agent this store's writes are recorded as by default, if set (``use(_:allowUnknown:)``).
    public func localActor() throws -> String? { try DeskError.translating { try store.localSetting(.actor) } }

    /// An agent's id: 1–64 of a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit.
    /// - Parameter field: the input that holds it, if it is not the command's argument.
    public static func checkName(_ name: String, field: String?) throws(DeskError) {
        if (try? #/[a-z0-9][a-z0-9._-]{0,63}/#.wholeMatch(in: name)) == nil {
            throw DeskError(.invalidInput, field: field, "takes an agent id: 1-64 of a-z, 0-9, ., _ and -, starting with a letter or digit; got \(StrictJSON.printable(name).debugDescription)")
        }
    }

    /// Publishes agents checked first: the first bad value is refused as invalid input naming its
    /// field (`email`), the others listed with it.
    private func publish(_ documents: [AgentDocument], actor: String) throws -> [AgentDocument] {
        try checkPermitted()
        var found = try issues(of: documents, library: try escalation.library())
        // A home site the fleet does not have would resolve no target and receive no notice.
        if let sites = try DeskError.translating({ try store.roster()?.roster.sites.map { $0.site } }) {
            for (index, agent) in documents.enumerated() where !sites.contains(agent.site) {
                let near = StrictJSON.nearest(agent.site, in: Set(sites), within: 2).map { " Did you mean \"\($0)\"?" } ?? ""
                found.append((index, "site", "\(StrictJSON.printable(agent.site).debugDescription) is not a site of the roster (\(sites.sorted().joined(separator: ", "))).\(near)"))
            }
        }
        if let first = found.first {
            // The command's argument is the name; `groups` is given one `--group` at a time.
            let field: String? = ["name": nil, "version": nil, "groups": "group"][first.key] ?? (first.key.isEmpty ? nil : first.key)
            throw DeskError(.invalidInput, field: field, first.message,
                            problems: found.dropFirst().map { "\($0.key.isEmpty ? "" : $0.key + ": ")\($0.message)" })
        }
        let data = try JSONEncoder().encode(ConfigBundle(agents: documents))
        return try escalation.publish(data, file: "agents", actor: actor).compactMap { doc in
            if case .agent(let a) = doc { return a } else { return nil }
        }
    }

    /// Only the coordinator publishes; said before any value is checked.
    private func checkPermitted() throws {
        let me = escalation.identity
        guard me.role == .coordinator else {
            throw DeskError(.notPermitted, "this store is a \(me.role.rawValue) (\(me.site)); agents are published by the coordinator, where they replicate to every site: run it at the coordinator")
        }
    }

    /// The configuration reader's problems of `documents`, each by the document's index and the key
    /// within it (`email`, `groups`).
    private func issues(of documents: [AgentDocument], library: ConfigLibrary) throws -> [(index: Int?, key: String, message: String)] {
        guard !documents.isEmpty else { return [] }
        do {
            _ = try ConfigReader.read(try JSONEncoder().encode(ConfigBundle(agents: documents)), file: "", published: library)
            return []
        } catch let errors as ConfigErrors {
            return errors.issues.map { issue in
                let path = issue.path
                guard path.hasPrefix("agents["), let close = path.firstIndex(of: "]") else { return (nil, "", issue.message) }
                let key = String(path[path.index(after: close)...].drop { $0 == "." }.prefix { $0 != "[" })
                return (Int(path.dropFirst(7).prefix { $0 != "]" }), key, issue.message)
            }
        }
    }
}

/// Reads an agent CSV with the store's CSV reader (``CustomerCSV``).
enum AgentCSV {
    static let columns = ["name", "display_name", "email", "site", "groups", "role", "roles", "active", "calendar"]

    /// The CSV column of a document key (`displayName` is `display_name`).
    static func column(forKey key: String) -> String {
        key.reduce(into: "") { out, c in out += c.isUppercase ? "_" + c.lowercased() : String(c) }
    }

    /// Every row of the file, and the problems of its rows with their lines.
    /// - Throws: when the file cannot be read as CSV or its header is wrong.
    static func parse(_ data: Data, file: String) throws -> (rows: [(line: Int, agent: AgentDocument)], problems: [(Int, String)]) {
        guard var text = String(data: data, encoding: .utf8) else {
            throw DeskError(.invalidInput, field: "file", "\(file) is not UTF-8 text; save the CSV as UTF-8")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let records = try DeskError.translating { try CustomerCSV.records(text, file: file) }
        guard let header = records.first else {
            throw DeskError(.invalidInput, field: "file", "\(file) is empty; it needs a header row (\(columns.joined(separator: ",")))")
        }
        var problems: [(Int, String)] = []
        var index: [String: Int] = [:]
        for (i, name) in header.fields.enumerated() {
            let folded = name.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: " ", with: "_")
            if !columns.contains(folded) {
                let near = StrictJSON.nearest(folded, in: Set(columns), within: 3).map { "; did you mean \"\($0)\"?" } ?? ""
                problems.append((1, "\(file) line 1, column \(i + 1): unknown column \(StrictJSON.printable(name).debugDescription)\(near); known: \(columns.joined(separator: ", "))"))
            } else if index[folded] != nil {
                problems.append((1, "\(file) line 1: column \(folded) appears twice"))
            } else {
                index[folded] = i
            }
        }
        for required in ["name", "display_name", "site"] where index[required] == nil && problems.isEmpty {
            problems.append((1, "\(file) line 1: the header needs a \(required) column"))
        }
        guard problems.isEmpty else { throw DeskError(.invalidInput, field: "file", "has problems; nothing was published", problems: problems.map(\.1)) }
        var out: [(line: Int, agent: AgentDocument)] = []
        for row in records.dropFirst() {
            if row.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard row.fields.count == header.fields.count else {
                problems.append((row.line, "\(file) line \(row.line): \(row.fields.count) fields, the header has \(header.fields.count)"))
                continue
            }
            func value(_ column: String) -> String? {
                guard let i = index[column] else { return nil }
                let text = row.fields[i].trimmingCharacters(in: .whitespaces)
                return text.isEmpty ? nil : text
            }
            func list(_ column: String) -> [String] {
                (value(column) ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            let where_ = "\(file) line \(row.line)"
            let name = value("name") ?? ""
            do { try AgentDesk.checkName(name, field: "name") } catch { problems.append((row.line, "\(where_), name: \(error.message)")) }
            let role = value("role").map { AgentRole(rawValue: $0.lowercased()) } ?? .agent
            if role == nil { problems.append((row.line, "\(where_), role: \(StrictJSON.printable(value("role") ?? "").debugDescription) is not a role; use agent, lead or manager")) }
            var active = true
            switch value("active")?.lowercased() {
            case nil, "true", "yes", "1": active = true
            case "false", "no", "0": active = false
            case let other?: problems.append((row.line, "\(where_), active: \(StrictJSON.printable(other).debugDescription) is not true or false"))
            }
            if value("display_name") == nil { problems.append((row.line, "\(where_), display_name: must not be empty")) }
            if value("site") == nil { problems.append((row.line, "\(where_), site: must not be empty")) }
            out.append((row.line, AgentDocument(name: name, version: 1, displayName: value("display_name") ?? "", email: value("email"),
                                                site: value("site") ?? "", groups: list("groups"), role: role ?? .agent, roles: list("roles"),
                                                active: active, calendar: value("calendar"))))
        }
        guard !out.isEmpty || !problems.isEmpty else { throw DeskError(.invalidInput, field: "file", "\(file) has a header but no agents") }
        return (out, problems)
    }
}

/// The checks of names against the agent directory, once one is published.
struct DirectoryCheck {
    let directory: AgentDirectory

    init(_ directory: AgentDirectory) { self.directory = directory }

    /// `name` must be an active agent of the directory.
    func agent(_ name: String, field: String?, allowUnknown: Bool = false) throws(DeskError) {
        guard directory.isPublished, !name.isEmpty else { return }
        guard let agent = directory.agent(name) else {
            if allowUnknown { return }
            let near = directory.suggestion(for: name).map { " Did you mean \"\($0)\"?" } ?? " `tierline agent list` shows them."
            throw DeskError(.invalidInput, field: field, "\(StrictJSON.printable(name).debugDescription) is not in the agent directory.\(near)"
                            + " A name from outside is taken only when allowed on purpose (--allow-unknown).")
        }
        guard agent.active else {
            throw DeskError(.invalidInput, field: field, "\(name) is deactivated in the agent directory; name an active agent")
        }
    }

    /// Some active agent must work in `group` at `site`.
    func group(_ group: String, at site: SiteID?, field: String, allowUnknown: Bool = false) throws(DeskError) {
        guard directory.isPublished, !allowUnknown, !group.isEmpty, let site, !directory.hasGroup(group, at: site) else { return }
        let near = directory.suggestion(group: group, at: site).map { " Did you mean \"\($0)\"?" } ?? ""
        let known = Set(directory.agents.filter { $0.active && $0.site == site.rawValue }.flatMap(\.groups)).sorted()
        throw DeskError(.invalidInput, field: field, "no active agent of the directory works in group \(StrictJSON.printable(group).debugDescription) at \(site)"
                        + " (groups there: \(known.isEmpty ? "none" : known.joined(separator: ", "))).\(near)"
                        + " A group from outside is taken only when allowed on purpose (--allow-unknown).")
    }
}
